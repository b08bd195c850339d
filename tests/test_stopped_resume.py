"""A run stopped on purpose (SIGTERM) is `stopped` in `ebt status`, and `ebt resume` finishes it with
every epoch run exactly once."""
from __future__ import annotations

import json
import os
import re
import signal

import pytest

from experiments import events as ev
from experiments import paths
from harness import CODE_ROOT
from harness.cli import main as ebt
from harness.lifecycle import launch
from harness.targets import LocalTarget
from tests.runs import tiny_spec
from tests.waiting import wait_for_events

pytestmark = pytest.mark.slow


def test_sigterm_gives_stopped_and_resume_finishes_every_epoch_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "ebt"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = tmp_path / "results"
    spec = tiny_spec(method="dense", prune_ratio=0.0, epochs=6, run_id="stop-me")
    spec["meter_where"] = "device"
    target = LocalTarget()
    info = launch(spec, target, results, CODE_ROOT)
    wait_for_events(info.run_dir, lambda log: any(e["event"] == ev.CHECKPOINT and e["phase_epoch"] >= 2 for e in log))
    os.kill(info.pid, signal.SIGTERM)
    wait_for_events(info.run_dir, lambda log: ev.last_end(log) is not None)

    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    (line,) = [row for row in out.splitlines() if re.match(r"\s*stop-me\s", row)]
    assert re.search(r"\bstopped\b", line)
    assert "ebt resume stop-me" in out

    assert ebt(["resume", "stop-me", "--results", str(results)]) == 0
    log = ev.read_events(paths.events(info.run_dir))
    trained = [e["epoch"] for e in log if e["event"] == ev.EPOCH]
    assert sorted(trained) == list(range(1, 7)), trained
    assert [e["status"] for e in log if e["event"] == ev.RUN_END] == [ev.STOPPED, ev.OK]
    record = json.loads((results / paths.RUNS / "stop-me" / paths.RECORD).read_text())
    assert record["status"] == ev.OK and record["resumed"] is True
