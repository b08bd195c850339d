"""Ctrl-C on `ebt run`: one line says how to stop the run and how to continue the sweep, and both work,
locally and over the real sshd (tests/sshd.py). The `ebt run` is a real process that gets a real SIGINT."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from experiments import events as ev
from experiments import paths
from harness.cli import main as ebt
from tests.runs import ROOT
from tests.waiting import wait_for, wait_for_events

pytestmark = pytest.mark.slow

EPOCHS = 6


def sweep_config(tmp_path: Path) -> Path:
    raw = yaml.safe_load((ROOT / "experiments" / "configs" / "quickstart.yaml").read_text())
    raw.update(epochs=EPOCHS, train_subset=128, test_subset=32, width=0.125, batch_size=32, method="dense",
               sweep={"seed": [1, 2]})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def interrupt_run(argv: list[str], run_dirs: Path) -> tuple[str, str]:
    """Start `ebt run ARGV` as a process, SIGINT it once the first run saved a checkpoint; its run id and
    the last line it printed. The runner is paused (SIGSTOP) meanwhile, so that it is still training when
    the test cancels it: `continue_once_terminated` lets it go on."""
    code = "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code, "run", *argv], env=env, cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        run_dir = wait_for(lambda: next(iter(run_dirs.glob("*/" + paths.EVENTS)), None), 120).parent
        log = wait_for_events(run_dir, lambda log: any(e["event"] == ev.CHECKPOINT for e in log), 240)
        os.kill(next(e["pid"] for e in log if e["event"] == ev.RUN_START), signal.SIGSTOP)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    return run_dir.name, err.strip().splitlines()[-1]


def commands(line: str) -> tuple[list[str], list[str]]:
    stop = re.search(r"Stop it: `ebt ([^`]+)`", line)
    more = re.search(r"continue the sweep: `ebt ([^`]+)`", line)
    assert stop and more, line
    return shlex.split(stop.group(1)), shlex.split(more.group(1))


def term_pending(pid: int) -> bool:
    """Whether SIGTERM waits on the (paused) process: /proc/PID/status' pending-signal masks."""
    masks = [line.split()[1] for line in Path("/proc/%d/status" % pid).read_text().splitlines()
             if line.startswith(("SigPnd:", "ShdPnd:"))]
    return any(int(mask, 16) >> (signal.SIGTERM - 1) & 1 for mask in masks)


def continue_once_terminated(pid: int) -> None:
    """Let the paused runner go on once `ebt cancel`'s SIGTERM is pending on it: it then stops at its next
    batch. Let go before, it could finish its last epochs while the cancel still connects (`now ok`)."""
    wait_for(lambda: term_pending(pid), 60, step=0.01)
    os.kill(pid, signal.SIGCONT)


def check_stop_and_continue(line: str, run_id: str, results: Path, run_dirs: Path, capsys) -> None:
    assert "%s goes on on" % run_id in line
    stop, more = commands(line)
    assert stop == ["cancel", run_id, "--results", str(results)]
    log = ev.read_events(paths.events(run_dirs / run_id))
    runner = next(e["pid"] for e in log if e["event"] == ev.RUN_START)
    waker = threading.Thread(target=continue_once_terminated, args=(runner,), daemon=True)
    waker.start()
    try:
        assert ebt(stop) == 0
    finally:
        waker.join(5)
        os.kill(runner, signal.SIGCONT)
    assert re.search(r"sent SIGTERM; now stopped", capsys.readouterr().out)
    assert ebt(["status", "--where", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"%s\s.*\bstopped\b.*pid \d+ in " % run_id, out), out
    assert ebt(more) == 0
    records = [json.loads(p.read_text()) for p in results.glob("runs/*/" + paths.RECORD)]
    assert sorted(r["config"]["seed"] for r in records) == [1, 2]
    assert all(r["status"] == ev.OK for r in records)
    log = ev.read_events(paths.events(run_dirs / run_id))
    assert [e["status"] for e in log if e["event"] == ev.RUN_END] == [ev.STOPPED, ev.OK]
    assert sorted(e["epoch"] for e in log if e["event"] == ev.EPOCH) == list(range(1, EPOCHS + 1))


def test_ctrl_c_then_the_printed_commands_stop_the_local_run_and_finish_the_sweep(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    argv = [str(sweep_config(tmp_path)), "--results", str(results)]
    run_id, line = interrupt_run(argv, tmp_path / "home" / "runs")
    check_stop_and_continue(line, run_id, results, tmp_path / "home" / "runs", capsys)


def test_ctrl_c_then_the_printed_commands_work_over_ssh(ssh_device, tmp_path, capsys):
    results = tmp_path / "results"
    run_id, line = interrupt_run([str(sweep_config(tmp_path)), "--target", ssh_device.url, "--results",
                                  str(results)], ssh_device.root / "runs")
    assert "--target" in line
    check_stop_and_continue(line, run_id, results, ssh_device.root / "runs", capsys)
