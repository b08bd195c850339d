"""A run's state as the laptop sees it: its log's outcome (`experiments.events.outcome`), the target's
answer whether the runner is alive, and a scheduler's view of its job. `ebt status`, `ebt resume` and a
continued sweep all ask `run_status`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from experiments import events as ev
from experiments import paths
from hw.fileio import parse_jsonl

from .lifecycle import RunInfo
from .targets import Target, TargetFailure
from .targets.base import Job

log = logging.getLogger(__name__)


@dataclass
class RunStatus:
    run_id: str
    target: str
    state: str
    phase: str = "-"
    epoch: str = "-"
    top1: Optional[float] = None
    launches: int = 1
    job: str = "-"  # a scheduler's view of the run's job (Slurm: `running on node7`, `completed`, ...)


@dataclass
class _Summary:
    """Where a run's log says it is: phase, epoch/total, last top-1."""

    events: list[dict]
    phase: str = "-"
    epoch: str = "-"
    top1: Optional[float] = None

    @classmethod
    def of(cls, log_bytes: bytes) -> "_Summary":
        rows, _ = parse_jsonl(log_bytes if log_bytes.endswith(b"\n") else log_bytes + b"\n")
        out = cls(rows)
        for e in rows:
            if e.get("event") == ev.PHASE_START:
                out.phase = e.get("phase", "-")
                out.epoch = "%s/%s" % (e.get("done", 0), e.get("epochs", "?"))
            elif e.get("event") == ev.EPOCH:
                out.epoch = "%s/%s" % (e.get("epoch"), e.get("epochs", "?"))
                out.top1 = e.get("top1")
        return out


def _local_log(results: Path, info: RunInfo) -> Path:
    return Path(paths.events(paths.results_run(results, info.run_id)))


def record_written(results: Path, run_id: str) -> bool:
    """Whether the run's record is on the laptop (a run that ended ok is `ok` for people only then)."""
    return (Path(paths.results_run(results, run_id)) / paths.RECORD).exists()


def ended_here(results: Path, info: RunInfo) -> bool:
    """Whether the run's end is already on the laptop (no need to ask its target)."""
    return info.state in ev.ENDED and _local_log(results, info).exists()


def run_status(info: RunInfo, target: Optional[Target], results: Path) -> RunStatus:
    """The state of one run, asking its target unless the run's end is already on the laptop."""
    status = RunStatus(info.run_id, info.target, info.state, launches=info.launches)
    if ended_here(results, info):
        summary, alive = _Summary.of(_local_log(results, info).read_bytes()), False
    elif target is None:
        status.state = ev.UNREACHABLE
        return status
    else:
        try:
            # alive first: a runner that logs its run_end and exits between the two questions is then
            # seen running (or ended), never `lost` from a log read before its end
            alive = target.alive(info.pid)
            summary = _Summary.of(target.read_from(paths.events(info.run_dir), 0))
        except TargetFailure as err:
            log.debug("%s: %s", info.target, err)
            status.state = ev.UNREACHABLE
            return status
    status.phase, status.epoch, status.top1 = summary.phase, summary.epoch, summary.top1
    status.state = ev.outcome(summary.events, alive)
    job = _job(info, target)
    if job is not None:
        status.job = job.describe()
        if not ended_here(results, info):
            status.state = job.run_state(summary.events)
    return status


def _job(info: RunInfo, target: Optional[Target]) -> Optional[Job]:
    """The scheduler's view of the run's job (None without a scheduler, or when it did not answer)."""
    try:
        return target.job(info.pid) if target is not None else None
    except TargetFailure as err:
        log.debug("%s: %s", info.target, err)
        return None
