#!/usr/bin/env python3
"""How long `ebt` takes to start: `ebt --help` and `ebt status` over the committed reference runs
(goal: <= 0.5 s each), each in a fresh Python process as a user would start it, and which heavy
libraries each one loaded (torch must not be among them).

    .venv/bin/python benchmarks/cli_start.py [--repeat 5] [--results results]

Prints the median and the fastest wall time of `--repeat` starts, and the median CPU time (user + system)
of the process: on a shared, loaded machine the wall time says as much about the neighbours.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "pandas", "matplotlib", "rich", "yaml", "paramiko")
# runs `ebt` in this process, then says on stderr which heavy libraries it had loaded
PROBE = ("import sys, json\nfrom harness.cli import main\ntry:\n    rc = main(sys.argv[1:])\n"
         "finally:\n    sys.stderr.write('\\nLOADED ' + json.dumps(sorted(m for m in %r if m in sys.modules)) + '\\n')\n"
         "sys.exit(rc)\n" % (HEAVY,))


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start(argv: list[str]) -> tuple[float, float, list[str], int]:
    """(wall s, CPU s, heavy libraries loaded, exit code) of one `ebt ARGV` in a fresh process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0, c0 = time.perf_counter(), _child_cpu()
    proc = subprocess.run([sys.executable, "-c", PROBE] + argv, cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    loaded = [json.loads(line[7:]) for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    return wall, cpu, (loaded[-1] if loaded else ["?"]), proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="starts per command (default: %(default)s)")
    ap.add_argument("--results", default="results", help="results folder for `ebt status` (default: %(default)s)")
    args = ap.parse_args()
    bad = 0
    for argv in (["--help"], ["status", "--results", args.results]):
        times, cpus, loaded, rc = [], [], [], 0
        for _ in range(args.repeat):
            wall, cpu, loaded, rc = start(argv)
            times.append(wall)
            cpus.append(cpu)
        label = "ebt " + " ".join(argv)
        print(f"{label:32s} wall median {statistics.median(times):.2f} s, fastest {min(times):.2f} s; "
              f"CPU median {statistics.median(cpus):.2f} s (goal <= 0.5 s); "
              f"loaded: {', '.join(loaded) or 'none of ' + ', '.join(HEAVY)}"
              + ("" if rc == 0 else f"  rc={rc}"))
        bad += rc != 0 or "torch" in loaded
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
