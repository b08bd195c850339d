"""How close `ebt plan` comes: the quickstart's estimated hours vs the time the quickstart then takes.

Runs `ebt plan CONFIG` (a fresh calibration on this machine; the Early-Bird epochs come from the suite's
reference records under results/runs/, copied into a temp folder), then `ebt run CONFIG` in a fresh
results folder and `EBT_HOME`, and prints, per run and for the sweep, the estimate next to the measurement: each
run's own time (its record's `totals.seconds`, start of the runner to its end) and the wall time of the
whole `ebt run` (which adds the harness: preflight, fetch, records).

    python benchmarks/plan_accuracy.py [--config experiments/configs/quickstart.yaml] [--budget 30]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments import paths

ROOT = Path(__file__).resolve().parents[1]
EBT = [str(Path(sys.executable).with_name("ebt"))]  # the venv's console script


def _ebt(args, env):
    t0 = time.monotonic()
    done = subprocess.run(EBT + args, cwd=str(ROOT), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if done.returncode != 0:
        sys.exit("ebt %s failed (exit %d):\n%s" % (" ".join(args), done.returncode, done.stderr[-3000:]))
    return done.stdout, time.monotonic() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "experiments" / "configs" / "quickstart.yaml"))
    parser.add_argument("--budget", default="30", help="calibration budget in seconds (ebt plan --budget)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ebt-plan-accuracy-"))
    env = dict(os.environ, EBT_HOME=str(base / "home"))
    results, planning = base / "results", base / "planning"
    for record in Path(paths.results_runs(ROOT / paths.RESULTS)).glob("*/" + paths.RECORD):
        folder = Path(paths.results_run(planning, record.parent.name))
        folder.mkdir(parents=True)
        shutil.copy(record, folder / record.name)
    table, plan_s = _ebt(["plan", args.config, "--results", str(planning), "--budget", args.budget], env)
    print(table)
    estimated = {line.split()[0]: float(line.split()[4]) for line in table.splitlines()
                 if re.match(r"^\S+\s+\S+\s+\d+\s", line) and not line.startswith("run_id")}
    _, run_s = _ebt(["run", args.config, "--results", str(results)], env)
    print("calibration + plan: %.0f s" % plan_s)
    print("%-48s %10s %10s %7s" % ("run", "estimated h", "measured h", "error"))
    measured_total = 0.0
    for run_id, hours in sorted(estimated.items()):
        record = json.loads((Path(paths.results_run(results, run_id)) / paths.RECORD).read_text())
        measured = record["totals"]["seconds"] / 3600.0
        measured_total += measured
        print("%-48s %10.4f %10.4f %+6.0f%%" % (run_id, hours, measured, 100 * (hours / measured - 1)))
    total = sum(estimated.values())
    print("%-48s %10.4f %10.4f %+6.0f%%" % ("sweep (runners)", total, measured_total,
                                            100 * (total / measured_total - 1)))
    print("%-48s %10.4f %10.4f %+6.0f%%" % ("sweep (ebt run wall time)", total, run_s / 3600.0,
                                            100 * (total / (run_s / 3600.0) - 1)))


if __name__ == "__main__":
    main()
