"""`ebt status` and `ebt fetch` over the test sshd, with the stand-in runner of test_ssh_target.py."""
from __future__ import annotations

import os
import re
import signal
import socket
import time

import pytest

from harness.cli import main as ebt
from harness.cli import runs
from harness.lifecycle import RunInfo
from harness.targets.ssh import SSHTarget
from tests.standin_runner import make_code
from tests.waiting import wait_for


def save_info(results, run_id, target, run_dir, pid):
    RunInfo(run_id=run_id, target=target, run_dir=run_dir, pid=pid, code_dir="", meter="none",
            meter_where="device", started=time.time()).save(results)


def status_line(capsys, results, run_id):
    capsys.readouterr()
    assert ebt(["status", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    (line,) = [row for row in out.splitlines() if re.match(r"\s*%s\s" % re.escape(run_id), row)]
    return line


@pytest.mark.slow
def test_status_running_lost_unreachable_and_fetch(ssh_device, tmp_path, capsys, monkeypatch):
    results = tmp_path / "results"
    target = SSHTarget(ssh_device.url)
    try:
        code_dir = target.prepare(make_code(tmp_path / "code"))
        run_dir = target.run_dir("live")
        launched = target.launch(code_dir, {"run_id": "live", "events": 200, "interval": 0.05, "note": ""}, run_dir)
        save_info(results, "live", target.url, run_dir, launched.pid)
        wait_for(lambda: target.read_from(run_dir + "/events.jsonl", 0).count(b"\n") >= 2)
        assert re.search(r"\brunning\b", status_line(capsys, results, "live"))

        os.kill(launched.pid, signal.SIGKILL)
        wait_for(lambda: not target.alive(launched.pid))
        assert re.search(r"\blost\b", status_line(capsys, results, "live"))
    finally:
        target.close()

    assert ebt(["fetch", "live", "--results", str(results)]) == 0
    assert (results / "runs" / "live" / "events.jsonl").exists()
    assert not (results / "runs" / "live" / "checkpoints").exists()

    # A board that is off: status says so promptly instead of hanging.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setattr(runs, "STATUS_GIVE_UP_S", 1.0)
    save_info(results, "off", "ssh://127.0.0.1:%d" % closed_port, "/nowhere", 1)
    started = time.monotonic()
    assert re.search(r"\bunreachable\b", status_line(capsys, results, "off"))
    assert time.monotonic() - started < 10
