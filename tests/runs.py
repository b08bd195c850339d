"""Helpers for tests that run the device runner for real on the offline dataset."""
import json
import os
import subprocess
import sys
from pathlib import Path

from experiments import spec as spec_table
from experiments.spec import resolve

ROOT = Path(__file__).resolve().parents[1]

# A tiny but real run: VGG11 at 1/8 width on a slice of the digits set, a few epochs.
TINY = dict(arch="vgg", depth=11, width=0.125, dataset="digits", train_subset=384, test_subset=128,
            batch_size=32, lr=0.1, epochs=6, device="cpu", workers=0, seed=0,
            eb_ratios=[0.5], eb_queue=2, eb_epsilon=0.3, prune_ratio=0.5)


def added_key(monkeypatch, name="added_knob", default=3):
    """The spec table as a later version may have it: one key more, whose default changes nothing."""
    field = spec_table.Field(name, int, default, None, "a key added by an upgrade")
    monkeypatch.setattr(spec_table, "FIELDS", spec_table.FIELDS + [field])
    monkeypatch.setitem(spec_table.BY_NAME, name, field)
    return name


def tiny_spec(**overrides):
    raw = dict(TINY, run_id="test-run")
    raw.update(overrides)
    return resolve(raw)


def write_spec(tmp_path, spec, name="spec.json"):
    path = Path(tmp_path) / name
    path.write_text(json.dumps(spec))
    return path


def runner_cmd(spec_path, out):
    return [sys.executable, "-m", "experiments", "run", str(spec_path), "--out", str(out)]


def run_runner(spec_path, out, timeout=300):
    return subprocess.run(runner_cmd(spec_path, out), cwd=str(ROOT), capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))


def start_runner(spec_path, out):
    return subprocess.Popen(runner_cmd(spec_path, out), cwd=str(ROOT), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
