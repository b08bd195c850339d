"""What a target is: a machine that runs `python3 -m experiments run` on a run folder.

The local target and the SSH target implement this one interface; the run lifecycle
(`harness.lifecycle`) only talks to it.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


class TargetError(UsageError):
    """A target URL is malformed: unknown scheme, missing host, unknown option."""


@dataclass(frozen=True)
class Launched:
    """A runner started on a target."""

    run_dir: str  # the run folder on the target (a path in the target's file system)
    pid: int


@dataclass(frozen=True)
class ClockOffset:
    """target_clock - laptop_clock, in seconds, with its half round-trip uncertainty."""

    offset_s: float
    uncertainty_s: float


class Target(abc.ABC):
    """One machine that runs experiments. `url` is `local` or `ssh://[user@]host[:port]`."""

    url: str

    @abc.abstractmethod
    def run_dir(self, run_id: str) -> str:
        """The run folder of `run_id` on the target."""

    @abc.abstractmethod
    def prepare(self, code_root: Path) -> str:
        """Make `experiments/` and `hw/` of `code_root` available on the target (only when changed);
        return the folder on the target to run `python3 -m experiments` from."""

    @abc.abstractmethod
    def launch(self, code_dir: str, spec: dict, run_dir: str) -> Launched:
        """Write `spec.json` into `run_dir` and start the runner there, detached (it must survive the
        laptop's process or SSH session ending). Re-launching on a run folder resumes it."""

    @abc.abstractmethod
    def read_from(self, path: str, offset: int) -> bytes:
        """Bytes of the file `path` from `offset` to its current end (b'' when absent)."""

    @abc.abstractmethod
    def alive(self, pid: int) -> bool:
        """Whether the process `pid` still runs on the target."""

    @abc.abstractmethod
    def fetch(self, run_dir: str, dest: Path, checkpoints: bool = False) -> None:
        """Copy the run folder to `dest` (checkpoints only when asked)."""

    @abc.abstractmethod
    def clock_offset(self) -> ClockOffset:
        """Measure target clock minus laptop clock."""

    def close(self) -> None:
        """Release connections."""
