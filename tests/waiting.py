"""Polling helpers shared by tests that wait for another process (a runner, an sshd, a Slurm job)."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable

from experiments import paths
from experiments.events import read_events


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, step: float = 0.05) -> Any:
    """The first truthy value of `predicate()`, polled every `step` s; fails after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met within %.0f s" % timeout)


def wait_for_events(run_dir: Path | str, predicate: Callable[[list], bool], timeout: float = 240.0) -> list:
    """The run folder's events once `predicate(events)` holds."""
    return wait_for(lambda: (lambda log: log if predicate(log) else None)(read_events(paths.events(run_dir))),
                    timeout=timeout, step=0.1)


def start_in_thread(*argv: str) -> tuple:
    """Run `ebt ARGV` in a thread: (the thread, a dict that gets `rc` when it ends)."""
    from harness.cli import main as ebt

    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(rc=ebt(list(argv))), daemon=True)
    thread.start()
    return thread, box
