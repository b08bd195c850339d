"""End to end over a real sshd with the real runner: `ebt run --target ssh://...`, a dropped link
mid-run, a killed runner -> `ebt status` says lost -> `ebt resume` finishes it.

The device is this machine seen through the test sshd (tests/sshd.py): the code is shipped as a
tarball into a temp `root`, the runner is started detached by the SSH target, and everything the
laptop side knows comes over SSH/SFTP.
"""
from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from harness.cli import main as ebt
from harness.targets.ssh import SSHAddress
from tests.waiting import wait_for
from experiments import paths
from experiments.events import read_events
from meter_standins import pty_meter  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "experiments" / "configs" / "quickstart.yaml"
# A short single run: the dense baseline of the quickstart for a few epochs.
SHORT = ["--set", "method=dense", "--set", "epochs=4"]
# Both methods of the quickstart, shortened as in test_local_e2e.py: the SSH path is under test here, not
# how well the full quickstart trains.
SHORT_SWEEP = ["--set", "epochs=6", "--set", "train_subset=384", "--set", "test_subset=128", "--set", "width=0.125",
               "--set", "batch_size=32", "--set", "lr=0.1", "--set", "eb_queue=2", "--set", "eb_epsilon=0.3"]


def the_run(results: Path) -> tuple:
    (folder,) = [p.parent for p in (results / "runs").glob("*/run.json")]
    return folder.name, json.loads((folder / "run.json").read_text())


def in_thread(*argv: str) -> tuple:
    box = {}
    thread = threading.Thread(target=lambda: box.update(rc=ebt(list(argv))), daemon=True)
    thread.start()
    return thread, box


def test_quickstart_over_ssh(ssh_device, tmp_path):
    results = tmp_path / "results"
    assert ebt(["run", str(QUICKSTART), "--target", ssh_device.url, "--results", str(results), *SHORT_SWEEP]) == 0
    records = [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/record.json"))]
    assert sorted(r["method"] for r in records) == ["dense", "ebtrain-ff"]
    assert all(r["config"]["epochs"] == 6 for r in records)
    for record in records:
        assert record["status"] == "ok" and record["target"] == str(SSHAddress.parse(ssh_device.url))
        folder = results / "runs" / record["run_id"]
        assert (folder / "events.jsonl").exists() and not (folder / "checkpoints").exists()
    # the run folders stay on the device (checkpoints included, for a later resume or fetch)
    assert sorted(p.name for p in (ssh_device.root / "runs").iterdir()) == sorted(r["run_id"] for r in records)


def test_dropped_link_mid_run_follower_recovers(ssh_device, tmp_path, caplog):
    """Kill every sshd session process while the runner trains: the runner goes on (detached), the
    follower reconnects and continues from its offset, every epoch is seen once, the record is complete.
    A config value built to break out of shell quoting rides along and stays data."""
    caplog.set_level(logging.INFO)
    owned = tmp_path / "owned"
    evil = "x'; touch %s; '" % owned
    results = tmp_path / "results"
    thread, box = in_thread("run", str(QUICKSTART), "--target", ssh_device.url, "--results", str(results),
                            *SHORT, "--set", "data_root=%s" % evil)
    run_id = wait_for(lambda: list((results / "runs").glob("*/run.json")), 60)[0].parent.name
    run_dir = ssh_device.root / "runs" / run_id
    wait_for(lambda: any(e["event"] == "epoch" for e in read_events(paths.events(run_dir))), 300)
    assert ssh_device.server.kill_sessions() >= 1
    pid = int((run_dir / "runner.pid").read_text())
    time.sleep(0.5)
    assert Path("/proc/%d" % pid).exists(), "the runner died with the SSH session"
    thread.join(600)
    assert not thread.is_alive() and box["rc"] == 0
    assert any("reconnecting" in r.getMessage() for r in caplog.records)
    # Each epoch reported once: the follower continued from its byte offset, no repeats, no holes.
    seen = [int(m.group(1)) for r in caplog.records
            for m in [re.search(r"\| train (\d+)/4 \|", r.getMessage())] if m]
    assert seen == [1, 2, 3, 4]
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    assert record["status"] == "ok" and record["config"]["data_root"] == evil
    assert [p["epochs"] for p in record["phases"]] == [4]
    assert not owned.exists()


def test_killed_runner_is_lost_then_resumed(ssh_device, tmp_path, capsys):
    results = tmp_path / "results"
    thread, box = in_thread("run", str(QUICKSTART), "--target", ssh_device.url, "--results", str(results), *SHORT)
    run_id = wait_for(lambda: list((results / "runs").glob("*/run.json")), 60)[0].parent.name
    run_dir = ssh_device.root / "runs" / run_id
    wait_for(lambda: any(e["event"] == "checkpoint" for e in read_events(paths.events(run_dir))), 300)
    os.kill(int((run_dir / "runner.pid").read_text()), signal.SIGKILL)  # a crash: no goodbye
    thread.join(120)
    assert not thread.is_alive() and box["rc"] == 1  # the follower saw the runner vanish

    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"%s\s.*\blost\b" % re.escape(run_id), out), out

    assert ebt(["resume", run_id, "--results", str(results)]) == 0
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    assert record["status"] == "ok" and record["resumed"] is True
    events = read_events(paths.events(run_dir))
    assert sum(e["event"] == "resume" for e in events) == 1
    # exactly the configured epochs: every epoch 1..4 present, the last one is 4
    assert sorted({e["epoch"] for e in events if e["event"] == "epoch"}) == [1, 2, 3, 4]
    assert [p["epochs"] for p in record["phases"]] == [4]
    assert json.loads((results / "runs" / run_id / "run.json").read_text())["launches"] == 2

    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    assert re.search(r"%s\s.*\bok\b" % re.escape(run_id), capsys.readouterr().out)


def test_resume_samples_a_laptop_meter_on_the_device_clock(ssh_device, pty_meter, tmp_path):
    """A serial meter on the laptop (a pty speaking the `lines` protocol): `ebt resume` samples it for
    the resumed session and the record carries the clock offsets and their uncertainty."""
    results = tmp_path / "results"
    thread, box = in_thread("run", str(QUICKSTART), "--target", ssh_device.url, "--results", str(results),
                            *SHORT, "--meter", pty_meter)
    run_id = wait_for(lambda: list((results / "runs").glob("*/run.json")), 60)[0].parent.name
    run_dir = ssh_device.root / "runs" / run_id
    wait_for(lambda: any(e["event"] == "checkpoint" for e in read_events(paths.events(run_dir))), 300)
    os.kill(int((run_dir / "runner.pid").read_text()), signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive() and box["rc"] == 1

    assert ebt(["resume", run_id, "--results", str(results)]) == 0
    folder = results / "runs" / run_id
    record = json.loads((folder / "record.json").read_text())
    meter = record["meter"]
    assert meter["where"] == "laptop" and meter["spec"] == pty_meter
    assert 0 < meter["clock"]["uncertainty_s"] < 0.1 and meter["samples"] > 0
    resumed_at = [e["t"] for e in read_events(paths.events(run_dir)) if e["event"] == "resume"][0]
    times = [float(line.split(",")[0]) for line in (folder / "power.csv").read_text().splitlines()[1:]]
    assert times and resumed_at - 30 < times[0] < resumed_at  # sampling began before the relaunch
    assert record["status"] == "ok" and record["resumed"] is True
