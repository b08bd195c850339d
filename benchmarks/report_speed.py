#!/usr/bin/env python3
"""Time `ebt report` on 1,000 synthetic records (goal: <= 3 s), and record loading alone (goal: << 1 s).

    .venv/bin/python benchmarks/report_speed.py [--n 1000]

The run folders are synthetic but the records are the real record builder's (`tests/record_runs.py`),
written to a temporary folder before the clock starts; nothing here is a result.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.records import default_pattern, load_records
from experiments import paths
from harness.cli import build_parser
from harness.cli import main as ebt
from tests.record_runs import benchmark_set


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="synthetic records (default: %(default)s)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the results folder here and reuse it on the next call (building takes minutes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        runs = Path(paths.results_runs(tmp))
        if not runs.is_dir():
            t0 = time.perf_counter()
            benchmark_set(runs, args.n)
            print(f"set-up:       {args.n} run folders and records built in {time.perf_counter() - t0:.1f} s "
                  "(not timed)")
        pattern = default_pattern(Path(tmp))
        t0 = time.perf_counter()
        df = load_records(pattern)
        load_s = time.perf_counter() - t0
        # `ebt` imports every subcommand's module to build its parser (torch, for `ebt run`); timed apart
        # so the report's own cost is visible, and included in the end-to-end figure.
        t0 = time.perf_counter()
        build_parser()
        cli_s = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        rc = ebt(["report", "--results", str(tmp)])
        report_s, report_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"load_records: {len(df)} records in {load_s:.3f} s")
    # CPU time too: on a shared, loaded machine the wall time says more about the neighbours.
    print(f"ebt CLI set-up (imports of all subcommands): {cli_s:.2f} s")
    print(f"ebt report:   {args.n} records in {report_s:.2f} s wall, {report_cpu:.2f} s CPU"
          + ("" if rc == 0 else f"  rc={rc}"))
    print(f"end to end:   {cli_s + report_s:.2f} s wall (goal <= 3 s)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
