"""A runner that logs its end and exits while `ebt status` asks about it is never called `lost`: the
state asks whether the runner is alive before it reads the log (the race behind `ebt cancel` over SSH
once printing `now lost` instead of `now stopped`)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from experiments import events as ev
from experiments import paths
from harness.lifecycle import RunInfo
from harness.status import run_status
from harness.targets.local import LocalTarget

# A real process standing in for a runner that got SIGTERM: once told to go on, it logs its run_end
# and exits.
RUNNER = """
import json, os, sys, time
run_dir, go = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.01)
with open(os.path.join(run_dir, %r), "a") as fh:
    fh.write(json.dumps({"event": %r, "status": %r}) + "\\n")
""" % (paths.EVENTS, ev.RUN_END, ev.STOPPED)


class EndsWhileReading(LocalTarget):
    """The real local target, except that the runner ends right after the log is read: the moment
    between the two questions a state asks."""

    def __init__(self, proc: subprocess.Popen, go: Path) -> None:
        super().__init__()
        self.proc, self.go = proc, go

    def read_from(self, path: str, offset: int) -> bytes:
        data = super().read_from(path, offset)
        if self.proc.poll() is None:
            self.go.touch()
            self.proc.wait(20)
        return data


def test_a_runner_ending_between_log_and_liveness_is_not_lost(tmp_path):
    run_dir, go = tmp_path / "run", tmp_path / "go"
    run_dir.mkdir()
    (run_dir / paths.EVENTS).write_text(json.dumps({"event": ev.RUN_START, "pid": 1}) + "\n")
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(run_dir), str(go)])
    try:
        info = RunInfo(run_id="r", target="local", run_dir=str(run_dir), pid=proc.pid, code_dir="",
                       meter="none", meter_where="device", started=time.time())
        target = EndsWhileReading(proc, go)
        assert run_status(info, target, tmp_path / "results").state == ev.RUNNING
        assert proc.returncode == 0
        assert run_status(info, target, tmp_path / "results").state == ev.STOPPED
    finally:
        proc.kill()
        proc.wait()
