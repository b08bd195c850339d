"""After reconnecting (`ebt attach`, a rerun config following its run again) the live line shows the phase
and an ETA from the epochs' wall times; `ebt status` says `ok` only once the record is written."""
import logging
import os
import re
import signal

import pytest

from experiments import events as ev
from experiments import paths
from harness import CODE_ROOT
from harness.cli import main as ebt
from harness.console import Progress
from harness.lifecycle import RunInfo, launch
from harness.targets import LocalTarget
from tests.runs import tiny_spec
from tests.waiting import wait_for_events


def test_replay_restores_the_phase_and_times_epochs_by_their_wall_clock():
    p = Progress("r", live=False)
    p.replay([{"t": 50.0, "event": ev.RUN_START},
              {"t": 100.0, "event": ev.PHASE_START, "phase": "search", "done": 0, "epochs": 10},
              {"t": 110.0, "event": ev.EPOCH, "epoch": 1, "epochs": 10, "top1": 20.0, "train_seconds": 2.0},
              {"t": 122.0, "event": ev.EPOCH, "epoch": 2, "epochs": 10, "top1": 30.0, "train_seconds": 2.0}])
    # 8 epochs left at 11 s each (training, evaluation and checkpoint), not at 2 s of training alone
    assert p.text() == "r | search 2/10 | top1 30.00% | phase ETA 88 s"
    # a resumed session: the downtime before it is no epoch
    p.replay([{"t": 500.0, "event": ev.RUN_START},
              {"t": 505.0, "event": ev.PHASE_START, "phase": "search", "done": 2, "epochs": 10},
              {"t": 515.0, "event": ev.EPOCH, "epoch": 3, "epochs": 10, "top1": 31.0}])
    assert p.text().endswith("search 3/10 | top1 31.00% | phase ETA 70 s")


@pytest.mark.slow
def test_attach_mid_run_shows_the_phase_and_status_says_ok_only_with_a_record(tmp_path, monkeypatch, capsys,
                                                                               caplog):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "ebt"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = tmp_path / "results"
    spec = tiny_spec(method="dense", prune_ratio=0.0, epochs=6, run_id="late")
    spec["meter_where"] = "device"
    info = launch(spec, LocalTarget(), results, CODE_ROOT)
    wait_for_events(info.run_dir, lambda log: any(e["event"] == ev.EPOCH for e in log))
    os.kill(info.pid, signal.SIGSTOP)  # still training when attach starts following it
    raw = open(paths.events(info.run_dir), "rb").read()
    info.events_offset = raw.index(b'"event": "epoch"')  # as if a first follower had read up to epoch 1
    info.events_offset = raw.index(b"\n", info.events_offset) + 1
    info.save(results)

    caplog.set_level(logging.INFO)
    os.kill(info.pid, signal.SIGCONT)
    assert ebt(["attach", "late", "--results", str(results)]) == 0
    lines = [r.getMessage() for r in caplog.records if re.match(r"late \| ", r.getMessage())]
    assert lines and all(re.match(r"late \| train \d/6 ", line) for line in lines), lines
    assert "phase ETA" in lines[0]

    capsys.readouterr()
    (results / paths.RUNS / "late" / paths.RECORD).unlink()  # ended ok, its record not (yet) written
    assert ebt(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"late\s+local\s+ok, not fetched", out) and "`ebt attach late` fetches it" in out
    assert ebt(["attach", "late", "--results", str(results)]) == 0
    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"late\s+local\s+ok\s", out) and "not fetched" not in out
