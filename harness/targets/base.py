"""What a target is: a machine that runs `python3 -m experiments run` on a run folder.

The local target and the SSH target implement this one interface; the run lifecycle
(`harness.lifecycle`) only talks to it. An operation that fails for the target's own reasons raises a
`TargetFailure` (`TargetUnreachable`: the link is down; `RemoteCommandError`: an operation failed on a
working link): each target turns its transport's errors (OSError, paramiko's, a command's exit status)
into these at its boundary, so callers catch only these and anything else is a bug.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import unquote

from experiments import events as ev

from ..errors import EbtError, UsageError


def same_target(a: str, b: str) -> bool:
    """Whether two target URLs name the same target (a run.json written before paths in URLs were kept
    readable has them percent-encoded)."""
    return unquote(a) == unquote(b)


class TargetError(UsageError):
    """A target URL is malformed: unknown scheme, missing host, unknown option."""


class TargetFailure(EbtError):
    """A target could not do an operation, for a reason of the target's (its link, its machine)."""


class TargetUnreachable(TargetFailure, ConnectionError):
    """The target cannot be reached: the link is down and did not come back within the target's retry time."""


class RemoteCommandError(TargetFailure):
    """An operation failed on a working link: a command's exit status, a file the target cannot read."""


@dataclass(frozen=True)
class Launched:
    """A runner started on a target."""

    run_dir: str  # the run folder on the target (a path in the target's file system)
    pid: int  # the runner's process id; a scheduler target's job id (what alive() and job() take)


@dataclass(frozen=True)
class ClockOffset:
    """target_clock - laptop_clock, in seconds, with its half round-trip uncertainty."""

    offset_s: float
    uncertainty_s: float


@dataclass(frozen=True)
class Job:
    """A batch scheduler's view of the job that runs a run (Slurm): its own state word, lower case
    (pending, running, completed, failed, cancelled, timeout, node_fail, ...), the node it runs on and
    how often it was requeued. `alive`: the job may still run the runner (pending, requeued, running).
    `held`: why a pending job will not start unless someone acts (held by an admin, launch failures),
    empty otherwise."""

    job_id: int
    state: str
    alive: bool
    pending: bool
    node: Optional[str] = None
    restarts: int = 0
    reason: str = ""
    held: str = ""

    def describe(self) -> str:
        """What `ebt status` shows: e.g. `running on node7`, `pending (Resources), requeued 1x`."""
        text = self.state
        if self.node and not self.pending:
            text += " on " + self.node
        if self.pending and self.reason not in ("", "None"):
            text += " (%s)" % self.reason
        if self.restarts:
            text += ", requeued %dx" % self.restarts
        if self.held:
            text += ", held: `scontrol release %d` or `ebt cancel`" % self.job_id
        return text

    def run_state(self, events: list) -> str:
        """The run's state (experiments.events vocabulary) from the job and the run's log: a queued job
        is PENDING and a started one RUNNING whatever an earlier attempt logged; once the job is over,
        the log decides (its final run_end, else LOST)."""
        if self.pending:
            return ev.PENDING
        if self.alive:
            return ev.RUNNING
        return ev.outcome(events, alive=False)


class Target(abc.ABC):
    """One machine that runs experiments. `url` is `local` or `ssh://[user@]host[:port]`."""

    url: str
    # a scheduler target queues each run as a job: a sweep submits every run before following any
    schedules_jobs = False
    # seconds to keep reading a run's log after its runner is gone, before calling it lost (shared filesystems)
    settle_s = 0.0

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
    def remove(self, run_dir: str) -> None:
        """Delete the run folder `run_dir` (a forced rerun starts from nothing); absent is fine."""

    @abc.abstractmethod
    def clock_offset(self) -> ClockOffset:
        """Measure target clock minus laptop clock."""

    def job(self, handle: int) -> Optional[Job]:
        """The scheduler's view of the job `handle` (the `Launched.pid` of a scheduler target); None for
        targets that start the runner themselves."""
        return None

    def jobs(self, handles: Sequence[int]) -> dict[int, Job]:
        """The scheduler's view of several jobs (those it knows), in as few queries as it allows."""
        return {int(h): j for h in handles if (j := self.job(h)) is not None}

    def cancel_jobs(self, handles: Sequence[int]) -> None:
        """Cancel several scheduler jobs, in as few calls as the scheduler allows."""
        for h in handles:
            self.cancel(h)

    # what `Launched.pid` is on this target, for people: a runner's process id, or a scheduler's job id
    handle_word = "pid"

    def cancel(self, handle: int) -> Optional[str]:
        """Stop the run whose runner is `handle`: it gets SIGTERM (a scheduler target cancels its job),
        saves its checkpoint and ends `stopped`, resumable. Returns what was done, for people."""
        raise TargetError(f"{self.url} cannot stop a runner from here; stop it with `kill {handle}` on the "
                          "target (it saves a checkpoint on SIGTERM)")

    def close(self) -> None:
        """Release connections."""
