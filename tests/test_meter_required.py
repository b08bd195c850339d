"""A config that asks for energy (`meter: auto`) on a target where no meter works: `ebt doctor` fails the
meter check, `ebt run` refuses in seconds with nothing made, and `--meter none` (going without energy,
knowingly) runs. The config is a paper config (Table 1), shrunk to one tiny digits run with --set."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hw.meters import open_auto

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAPER = str(ROOT / "experiments" / "configs" / "table1.yaml")
TINY = ["--set", "arch=vgg", "--set", "depth=11", "--set", "dataset=digits", "--set", "eb_ratios=[0.5]",
        "--set", "search_lr=null", "--set", "search_lr_milestones=null", "--set", "epochs=3",
        "--set", "eb_draw_epoch=2", "--set", "eb_queue=2", "--set", "width=0.125", "--set", "train_subset=128",
        "--set", "test_subset=32", "--set", "batch_size=32", "--set", "device=cpu"]


def ebt(*args, env):
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())",
                           *args], cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, env=dict(os.environ, PYTHONPATH=str(ROOT), **env), timeout=600)
    return proc.returncode, proc.stdout, time.monotonic() - started


def test_meter_auto_without_a_meter_fails_the_doctor_and_the_run_unless_meter_none(tmp_path):
    found = open_auto()
    if found is not None:
        found.close()
        pytest.skip("this machine has a working meter (%s): `auto` finds it" % found.spec)
    env = {"EBT_HOME": str(tmp_path / "home")}
    results = ["--results", str(tmp_path / "results")]
    assert "meter: auto" in Path(PAPER).read_text()

    rc, out, _ = ebt("doctor", PAPER, *TINY, env=env)
    assert rc != 0, out
    (line,) = [l for l in out.splitlines() if l.startswith("FAIL  meter auto")]
    assert "found no meter that works" in line and "--meter none" in line

    rc, out, seconds = ebt("run", PAPER, *TINY, *results, env=env)
    assert rc != 0 and "found no meter that works" in out and "--meter none" in out, out
    assert seconds < 60 and not (tmp_path / "results" / "runs").exists() and not (tmp_path / "home").exists()

    rc, out, _ = ebt("run", PAPER, *TINY, *results, "--meter", "none", env=env)
    assert rc == 0, out
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("runs/*/record.json")]
    assert record["status"] == "ok" and record["totals"]["energy_j"] is None
