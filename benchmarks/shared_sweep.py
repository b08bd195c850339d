#!/usr/bin/env python3
"""Wall time and search epochs of a Fig 1-style sweep alone (`--no-share`) and with a shared trunk.

Six EB Train (FF) runs on digits (p 0.3/0.5/0.7 x tickets drawn at epochs 3 and 6 of 10, one seed, a
tiny VGG11) run through `ebt run` on the local target twice, each into its own temporary root: once with
`--no-share`, once sharing the search. Printed: wall time and search epochs trained of each, and whether
every run's record (accuracy, parameters, channels, Early-Bird block) is the same.

    python3 benchmarks/shared_sweep.py
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import events as ev  # noqa: E402
from experiments import paths  # noqa: E402

CONFIG = """method: ebtrain-ff
arch: vgg
depth: 11
width: 0.125
dataset: digits
epochs: 10
batch_size: 32
train_subset: 64
test_subset: 32
eb_ratios: [0.3, 0.5, 0.7]
device: cpu
workers: 0
meter: none
sweep:
  prune_ratio: [0.3, 0.5, 0.7]
  eb_draw_epoch: [3, 6]
"""
KEYS = ("accuracy", "params", "channels", "eb")


def sweep(folder, share):
    """(wall seconds, search epochs trained, {run id: record fields}) of one `ebt run`."""
    home, results = folder / "home", folder / "results"
    argv = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
            "run", str(folder.parent / "fig1.yaml"), "--results", str(results)] + ([] if share else ["--no-share"])
    env = dict(os.environ, EBT_HOME=str(home), PYTHONPATH=str(ROOT))
    t0 = time.time()
    subprocess.run(argv, env=env, cwd=str(ROOT), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.time() - t0
    folders = list(Path(home, paths.RUNS).iterdir()) + list(Path(home, paths.TRUNKS).glob("*"))
    epochs = sum(e["event"] == ev.EPOCH and e["phase"] == "search"
                 for f in folders for e in ev.read_events(paths.events(f)))
    records = {}
    for path in Path(results, paths.RUNS).glob("*/" + paths.RECORD):
        record = json.loads(path.read_text())
        records[record["run_id"]] = {k: record[k] for k in KEYS}
    return wall, epochs, records


def main():
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "fig1.yaml").write_text(CONFIG)
        alone = sweep(tmp / "alone", share=False)
        shared = sweep(tmp / "shared", share=True)
    for name, (wall, epochs, records) in (("--no-share", alone), ("shared", shared)):
        print("%-10s %3d runs  %6.1f s wall  %3d search epochs" % (name, len(records), wall, epochs))
    same = alone[2] == shared[2] and len(alone[2]) == 6
    print("same run ids and results: %s; shared wall / alone: %.0f%%" % (same, 100 * shared[0] / alone[0]))
    return 0 if same and shared[1] <= 7 else 1


if __name__ == "__main__":
    sys.exit(main())
