#!/usr/bin/env python3
"""Time `ebt report` on 1,000 synthetic records (goal: <= 3 s), cold: each report in a fresh Python process
as a user starts it, into an empty output folder.

    .venv/bin/python benchmarks/report_speed.py [--n 1000] [--repeat 3] [--keep FOLDER]

The run folders are synthetic but made as the runner makes them (`tests/record_runs.py`: spec, events,
power trace, every Early-Bird search's mask log) and their records are the real record builder's; they are
written before any clock starts (minutes; `--keep` builds them once and reuses them). Nothing here is a
result. Prints each report's wall and CPU time (the process's user + system: on a shared, loaded machine
the wall time says as much about the neighbours), and the median.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import paths  # noqa: E402

GOAL_S = 3.0
EBT = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report_once(results: Path, out: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, exit code) of one `ebt report` in a fresh process, writing into `out`."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0, c0 = time.perf_counter(), _child_cpu()
    proc = subprocess.run([sys.executable, "-c", EBT, "report", "--results", str(results), "--out", str(out)],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
    return wall, cpu, proc.returncode


def build_set(results: Path, n: int) -> None:
    from tests.record_runs import benchmark_set

    t0 = time.perf_counter()
    benchmark_set(Path(paths.results_runs(results)), n)
    print(f"set-up:     {n} run folders and records built in {time.perf_counter() - t0:.1f} s (not timed)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="synthetic records (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="cold reports timed (default: %(default)s)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the results folder here and reuse it on the next call (building takes minutes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        results = args.keep or Path(scratch) / "results"
        if not Path(paths.results_runs(results)).is_dir():
            build_set(results, args.n)
        n = len(list(Path(paths.results_runs(results)).glob("*/" + paths.RECORD)))
        walls, cpus, bad = [], [], 0
        for i in range(args.repeat):
            wall, cpu, rc = report_once(results, Path(scratch) / f"report-{i}")
            walls.append(wall)
            cpus.append(cpu)
            bad += rc != 0
            print(f"ebt report: {n} records in {wall:.2f} s wall, {cpu:.2f} s CPU" + ("" if rc == 0 else f"  rc={rc}"))
    print(f"median:     {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU "
          f"(goal <= {GOAL_S:g} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
