#!/usr/bin/env python3
"""Time `ebt report` on 1,000 synthetic records (goal: <= 5 s), and record loading alone (goal: << 1 s).

    .venv/bin/python benchmarks/report_speed.py [--n 1000]

The records are synthetic (analysis.synthetic) and written to a temporary folder; nothing here is a result.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.records import load_records  # noqa: E402
from analysis.synthetic import benchmark_set  # noqa: E402
from harness.cli import build_parser, main as ebt  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="synthetic records (default: %(default)s)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        benchmark_set(runs, args.n)
        pattern = str(runs / "*" / "record.json")
        t0 = time.perf_counter()
        df = load_records(pattern)
        load_s = time.perf_counter() - t0
        # `ebt` imports every subcommand's module to build its parser (torch, for `ebt run`); timed apart
        # so the report's own cost is visible, and included in the end-to-end figure.
        t0 = time.perf_counter()
        build_parser()
        cli_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        rc = ebt(["report", "--runs", pattern, "--out", str(Path(tmp) / "results")])
        report_s, report_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"load_records: {len(df)} records in {load_s:.3f} s")
    # CPU time too: on a shared, loaded machine the wall time says more about the neighbours.
    print(f"ebt CLI set-up (imports of all subcommands): {cli_s:.2f} s")
    print(f"ebt report:   {args.n} records in {report_s:.2f} s wall, {report_cpu:.2f} s CPU"
          + ("" if rc == 0 else f"  rc={rc}"))
    print(f"end to end:   {cli_s + report_s:.2f} s wall (goal <= 5 s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
