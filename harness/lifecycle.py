"""The life of a run seen from the laptop: launch on a target, follow, fetch, record.

Laptop-side state of each run is `results/runs/<run_id>/run.json` (target, run folder, pid, how far the
event log was read), written atomically, so `ebt status`, `ebt attach` and `ebt resume` work from any
later shell. Following reads `events.jsonl` (and `power.csv`, for live watts) by byte offset: after a
dropped connection it reconnects with backoff and continues where it stopped, losing nothing. The run's
state comes from its log through `experiments.events.outcome`, the one place that decides it.

Only a target's own failures (`harness.targets.TargetFailure`) count as a dropped link. The live view and
the record builder are this program's: an error in them is a bug, shown in one line (the traceback with
`-v`), and the run is still followed to its end, never left detached because of it.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from experiments import events as ev
from experiments import paths
from hw.fileio import atomic_write_json, parse_jsonl
from hw.trace import parse_tail

from . import trunks
from .errors import EbtError, UnknownRun
from .targets import Target, TargetFailure

if TYPE_CHECKING:
    from .console import Progress
    from .laptop_meter import LaptopMeters

log = logging.getLogger(__name__)

POLL_S = 0.5
RECONNECT_BACKOFF_S = (1, 2, 4, 8, 15, 30)
RECONNECT_GIVE_UP_S = 600.0


@dataclass
class RunInfo:
    run_id: str
    target: str
    run_dir: str
    pid: int
    code_dir: str
    meter: str
    meter_where: str
    started: float
    state: str = ev.RUNNING  # a run state of experiments.events
    events_offset: int = 0
    launches: int = 1
    extra: dict = field(default_factory=dict)

    @staticmethod
    def path(results: Path, run_id: str) -> Path:
        return Path(paths.results_run(results, run_id)) / paths.RUN_INFO

    def save(self, results: Path) -> None:
        atomic_write_json(self.path(results, self.run_id), asdict(self))

    @classmethod
    def load(cls, results: Path, run_id: str) -> "RunInfo":
        path = cls.path(results, run_id)
        if not path.exists():
            raise UnknownRun(f"no run {run_id!r} under {paths.results_runs(results)} (see `ebt status`)")
        return cls(**json.loads(path.read_text()))


def log_bug(what: str, err: Exception) -> None:
    """One line for a bug in a part the run does not depend on; the traceback with `-v`."""
    log.error("%s failed: %s: %s (a bug; run with -v for the traceback)", what, type(err).__name__, err,
              exc_info=err if log.isEnabledFor(logging.DEBUG) else None)


@dataclass
class _Follower:
    """Reads a run's new events (and power rows, for the live view) by byte offset."""

    info: RunInfo
    target: Target
    progress: Optional["Progress"]
    power_offset: int = 0

    def poll(self) -> tuple[list[dict], bool, list[tuple[float, float]]]:
        """New complete events since the last poll, whether the runner is alive, and new power samples
        for the live view; the target's failures propagate (the caller reconnects)."""
        chunk = self.target.read_from(paths.events(self.info.run_dir), self.info.events_offset)
        power = (self.target.read_from(paths.power_csv(self.info.run_dir), self.power_offset)
                 if self.progress else b"")
        alive = self.target.alive(self.info.pid)
        rows, used = parse_jsonl(chunk)
        self.info.events_offset += used
        samples: list[tuple[float, float]] = []
        if power:
            samples, pused = parse_tail(power, has_header=self.power_offset == 0)
            self.power_offset += pused
        return rows, alive, samples

    def show(self, rows: list[dict], samples: list[tuple[float, float]],
             on_tick: Optional[Callable[[], None]] = None) -> None:
        """Pass new events and watts to the live view (and tick it); a view that fails is switched off."""
        if self.progress is None:
            return
        try:
            for t, watts in samples:
                self.progress.on_power(t, watts)
            for e in rows:
                self.progress.on_event(e)
            if on_tick:
                on_tick()
        except Exception as err:  # the view's own bug: the run is followed and recorded without it
            log_bug(f"{self.info.run_id}: the live view", err)
            self.progress = None

    def drained(self) -> bool:
        """Whether the log has nothing unread (a runner may write its last lines just before exiting)."""
        return not self.target.read_from(paths.events(self.info.run_dir), self.info.events_offset)


class _Backoff:
    """Reconnect delays, and the moment to give up on a target that stays away."""

    def __init__(self) -> None:
        self.failing_since: Optional[float] = None
        self.attempt = 0

    def ok(self) -> None:
        self.failing_since, self.attempt = None, 0

    def failed(self, info: RunInfo, err: Exception) -> bool:
        """Wait before the next try; False when the target has been away for too long."""
        now = time.time()
        self.failing_since = self.failing_since or now
        if now - self.failing_since > RECONNECT_GIVE_UP_S:
            log.error("lost contact with %s for %.0f s; the run goes on there: `ebt attach %s`",
                      info.target, now - self.failing_since, info.run_id)
            return False
        delay = RECONNECT_BACKOFF_S[min(self.attempt, len(RECONNECT_BACKOFF_S) - 1)]
        log.warning("connection to %s failed (%s); retrying in %d s", info.target, err, delay)
        self.attempt += 1
        time.sleep(delay)
        return True


def follow(info: RunInfo, target: Target, results: Path, progress: Optional["Progress"] = None,
           on_tick: Optional[Callable[[], None]] = None) -> str:
    """Follow the run until its log ends (-> the `run_end` status) or its runner is gone without one
    (-> lost). Reconnects with backoff when the target drops; after RECONNECT_GIVE_UP_S without the
    target the run is left detached (it goes on; `ebt attach` follows it again)."""
    follower, backoff = _Follower(info, target, progress), _Backoff()
    seen: list[dict] = []
    settle: dict[str, float] = {}
    while True:
        try:
            rows, alive, samples = follower.poll()
            drained = alive or follower.drained()
        except TargetFailure as err:
            if backoff.failed(info, err):
                continue
            info.state = ev.DETACHED
            info.save(results)
            return info.state
        backoff.ok()
        seen.extend(e for e in rows if e.get("event") in (ev.RUN_START, ev.RUN_END))
        follower.show(rows, samples, on_tick if drained else None)
        if not drained:
            continue
        info.state = ev.outcome(seen, alive)
        if info.state in ev.RESUMABLE and alive and target.job(info.pid) is not None:
            info.state = ev.RUNNING  # the scheduler requeued the job (preempted): its runner resumes the run
        if _unsettled(info, target, settle):
            continue
        info.save(results)
        if info.state != ev.RUNNING:
            return info.state
        time.sleep(POLL_S)


def _unsettled(info: RunInfo, target: Target, settle: dict[str, float]) -> bool:
    """Whether to look again before concluding: a runner gone without a run_end is LOST only once the
    target's `settle_s` has passed (a shared filesystem may show the log's end later than the scheduler
    says the job ended); a queued job that will not start by itself (held) ends the following, DETACHED."""
    if info.state == ev.LOST and time.monotonic() < settle.setdefault("until", time.monotonic() + target.settle_s):
        time.sleep(POLL_S)
        return True
    job = target.job(info.pid) if info.state == ev.RUNNING and target.schedules_jobs else None
    if job is not None and job.held:
        log.error("%s: job %d will not start by itself (%s): `scontrol release %d` then `ebt attach %s`, or "
                  "`ebt cancel %s`", info.run_id, job.job_id, job.held, job.job_id, info.run_id, info.run_id)
        info.state = ev.DETACHED
    return False


def launch(spec: dict, target: Target, results: Path, code_root: Path, after: Sequence[int] = ()) -> RunInfo:
    """Start the run; `after`: on a scheduler, the jobs that must end ok first (its trunk's)."""
    code_dir = target.prepare(code_root)
    run_dir = target.run_dir(spec["run_id"])
    launched = target.launch(code_dir, spec, run_dir, after=after) if after else target.launch(code_dir, spec, run_dir)
    info = RunInfo(run_id=spec["run_id"], target=target.url, run_dir=launched.run_dir, pid=launched.pid,
                   code_dir=code_dir, meter=spec["meter"], meter_where=spec["meter_where"],
                   started=time.time())
    info.save(results)
    log.info("%s: started on %s (pid %d, %s)", info.run_id, target.url, info.pid, info.run_dir)
    return info


def relaunch(info: RunInfo, target: Target, results: Path, code_root: Path) -> RunInfo:
    """Start the runner again on the same run folder: it resumes from the last checkpoint."""
    spec = json.loads(target.read_from(paths.spec(info.run_dir), 0) or b"{}")
    if not spec:
        raise EbtError(f"{info.target}:{paths.spec(info.run_dir)} is missing; cannot resume {info.run_id}")
    info.code_dir = target.prepare(code_root)
    # follow from the end of the log as it is: the last session's run_end is not this one's
    info.events_offset = len(target.read_from(paths.events(info.run_dir), 0))
    info.pid = target.launch(info.code_dir, spec, info.run_dir).pid
    info.state = ev.RUNNING
    info.launches += 1
    info.save(results)
    log.info("%s: resumed on %s (pid %d)", info.run_id, info.target, info.pid)
    return info


def finalize(info: RunInfo, target: Target, results: Path, code_root: Path, checkpoints: bool = False,
             meter: Optional[dict[str, Any]] = None) -> Path:
    """Fetch the run folder into `results/runs/<run_id>/` and write its record."""
    from .record import build_record, write_record  # numpy, and torch to count FLOPs: only to record

    dest = Path(paths.results_run(results, info.run_id))
    target.fetch(info.run_dir, dest, checkpoints=checkpoints)
    trunks.fetch_for(dest, target, results)  # a branch's record bills its trunk's epochs
    try:
        record = build_record(dest, meter=meter, code_root=code_root, target=info.target)
    except EbtError:
        raise
    except Exception as err:  # the builder's bug, not the run's: its state stays what its log says
        log.debug("%s: the record builder's traceback", info.run_id, exc_info=True)
        raise EbtError(f"{info.run_id}: its record could not be built: {type(err).__name__}: {err} (a bug; run "
                       f"with -v for the traceback; `ebt attach {info.run_id}` writes it again)") from err
    path = write_record(record, dest)
    top1 = record["accuracy"].get("top1")
    energy = record["totals"]["energy_j"]
    log.info("%s: %s, top1 %s, %.0f s, energy %s -> %s", info.run_id, record["status"],
             "n/a" if top1 is None else f"{top1:.2f}%", record["totals"]["seconds"],
             "n/a (no meter)" if energy is None else f"{energy:.0f} J", path)
    return path


def laptop_meter(spec: dict, target: Target, results: Path) -> Optional["LaptopMeters"]:
    """A new sampling session of the run's laptop-side (serial) meters, the primary and any secondary
    one; None when every meter is on the device. Start it before the runner (re)starts, so that no joule
    of the run goes unmeasured."""
    from .laptop_meter import laptop_meters
    return laptop_meters(spec, target, Path(paths.results_run(results, spec["run_id"])))


def start_metered(laptop: Optional["LaptopMeters"], start: Callable[[], RunInfo]) -> RunInfo:
    """Start the laptop meter (if any) before the runner, so its first joule is covered; stop the meter
    again when the runner could not be started."""
    if laptop:
        laptop.start()
    try:
        return start()
    except BaseException:
        if laptop:
            laptop.stop()
        raise


def follow_and_finish(info: RunInfo, target: Target, results: Path, code_root: Path,
                      checkpoints: bool = False, laptop: Optional["LaptopMeters"] = None) -> str:
    """Follow the run live, stop the laptop meter, and (unless the run was lost or left detached)
    fetch it and write its record. Returns the run's state."""
    from .console import Progress  # rich: only when following a run live

    progress = Progress(info.run_id)
    if info.events_offset:  # following again: the line starts from what the log already says
        progress.replay(parse_jsonl(target.read_from(paths.events(info.run_dir), 0)[:info.events_offset])[0])

    def show_laptop_watts() -> None:
        sample = laptop.latest() if laptop else None
        if sample is not None:
            progress.on_power(*sample)

    try:
        state = follow(info, target, results, progress, on_tick=show_laptop_watts if laptop else None)
    finally:
        try:
            progress.close()
        except Exception as err:  # the view's bug: the meter is still stopped and the run recorded
            log_bug(f"{info.run_id}: the live view", err)
        meter_block = laptop.stop() if laptop else None
    if state == ev.LOST:
        log.error("%s: the runner on %s is gone without finishing; `ebt resume %s`",
                  info.run_id, info.target, info.run_id)
    elif state != ev.DETACHED:
        finalize(info, target, results, code_root, checkpoints=checkpoints, meter=meter_block)
    return state
