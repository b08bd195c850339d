"""The local target: the runner as a detached subprocess of this machine.

Run folders live under `$EBT_HOME/runs/<run_id>` (default `~/ebt`), the same layout as on a remote board,
so a local run is followed, resumed and fetched exactly like a remote one. The code runs from the
checkout itself with this interpreter (which has torch).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from experiments import paths
from hw.fileio import atomic_write_json

from .base import ClockOffset, Launched, RemoteCommandError, Target


class LocalTarget(Target):
    url = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen] = {}

    def run_dir(self, run_id: str) -> str:
        return paths.run_dir(paths.ebt_home(), run_id)

    def prepare(self, code_root: Path) -> str:
        return str(Path(code_root).resolve())

    def launch(self, code_dir: str, spec: dict, run_dir: str) -> Launched:
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        spec_path = paths.spec(folder)
        if not os.path.exists(spec_path):
            atomic_write_json(spec_path, spec)
        with open(paths.runner_log(folder), "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "experiments", "run", str(spec_path), "--out", str(folder)],
                cwd=code_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # like setsid on the board: ebt's own end does not stop it
            )
        self._children[proc.pid] = proc
        return Launched(run_dir=str(folder), pid=proc.pid)

    def read_from(self, path: str, offset: int) -> bytes:
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                return fh.read()
        except FileNotFoundError:
            return b""
        except OSError as err:
            raise RemoteCommandError(f"local: cannot read {path}: {err}") from err

    def alive(self, pid: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a zombie has ended; it only waits for its parent to read its status
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True

    def cancel(self, handle: int) -> str:
        if not self.alive(handle):
            return f"runner pid {handle} had already ended"
        os.kill(handle, signal.SIGTERM)  # the runner saves its checkpoint and logs run_end stopped
        return f"runner pid {handle} sent SIGTERM"

    def fetch(self, run_dir: str, dest: Path, checkpoints: bool = False) -> None:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for item in Path(run_dir).iterdir():
            if not paths.fetched(item.name, checkpoints):
                continue
            target = dest / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            else:
                shutil.copy2(item, target)

    def remove(self, run_dir: str) -> None:
        shutil.rmtree(run_dir, ignore_errors=True)

    def clock_offset(self) -> ClockOffset:
        return ClockOffset(0.0, 0.0)

    def run_module(self, code_dir: str, argv: list[str], timeout: float) -> tuple[int, str, str]:
        """`python -m ARGV` from `code_dir` with the runner's interpreter: (exit code, stdout, stderr)."""
        try:
            proc = subprocess.run([sys.executable, "-m", *argv], cwd=code_dir, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "", f"no answer within {timeout:.0f} s"
        return proc.returncode, proc.stdout, proc.stderr
