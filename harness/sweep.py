"""A config's runs as one sweep: what is done, what to continue, what to start; and running it.

Run ids are digests of the resolved spec (`harness.config`), so the same config gives the same ids on
every call and "is this run done?" is a lookup in the results folder:

- `skip`: `results/runs/<run_id>/record.json` exists with status ok;
- `continue`: the laptop knows the run (`run.json`) but has no ok record: a running (or queued) run is
  followed again, a stopped, failed or lost one resumes from its last checkpoint, one that ended ok while nobody
  followed it is fetched and recorded;
- `start`: everything else.

`--force` reruns every run from scratch: its run folder on the target and its copy under `results/` are
deleted first (a run that is still running or queued is left alone and reported).
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from experiments import events as ev
from experiments import paths

from . import CODE_ROOT
from .board import Here, made_elsewhere
from .config import differing_keys
from .errors import EbtError
from .lifecycle import (
    RunInfo,
    finalize,
    follow_and_finish,
    laptop_meter,
    launch,
    relaunch,
    start_metered,
)
from .status import run_status
from .targets import Target
from .targets.base import same_target

log = logging.getLogger(__name__)

SKIP, CONTINUE, START, RERUN = "skip", "continue", "start", "rerun"
OTHER_BOARD = "other-board"  # an ok record made on another kind of board (harness.board): not run, said


@dataclass
class Planned:
    spec: dict[str, Any]
    action: str  # SKIP, CONTINUE, START, RERUN or OTHER_BOARD
    note: str = ""  # OTHER_BOARD: where the record was made, and what to do

    @property
    def run_id(self) -> str:
        return self.spec["run_id"]


def has_ok_record(results: Path, run_id: str) -> bool:
    path = Path(paths.results_run(results, run_id)) / paths.RECORD
    try:
        return json.loads(path.read_text()).get("status") == ev.OK
    except (OSError, ValueError, AttributeError):
        return False


def _known(results: Path, run_id: str) -> bool:
    return RunInfo.path(results, run_id).exists()


def plan(specs: list[dict[str, Any]], results: Path, force: bool = False,
         here: Optional[Here] = None) -> list[Planned]:
    """What `ebt run` will do with each spec, from the laptop's results folder (and, given `here`, whether
    an ok record was made on the target's kind of board)."""
    out = []
    for spec in specs:
        rid = spec["run_id"]
        known = _known(results, rid) or Path(paths.results_run(results, rid)).exists()
        note = ""
        if force:
            action = RERUN if known else START
        elif has_ok_record(results, rid):
            note = made_elsewhere(results, rid, here) or ""
            action = OTHER_BOARD if note else SKIP
        else:
            action = CONTINUE if _known(results, rid) else START
        out.append(Planned(spec, action, note))
    return out


def summary(planned: list[Planned]) -> str:
    counts = {a: sum(p.action == a for p in planned) for a in (SKIP, CONTINUE, START, RERUN, OTHER_BOARD)}
    said = {SKIP: "done (skipped)", OTHER_BOARD: "done on another kind of board (not run here)"}
    parts = [f"{n} {said[a]}" if a in said else f"{n} to {a}" for a, n in counts.items() if n]
    return f"{len(planned)} run{'s' if len(planned) != 1 else ''}: " + ", ".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, separators=(",", ":"))
    return f"{value:g}" if isinstance(value, float) else str(value)


def table(planned: list[Planned]) -> str:
    """A plain-text table: run id, method, the keys whose values differ between runs, the action."""
    specs = [p.spec for p in planned]
    keys = [k for k in differing_keys(specs) if k != "method"]
    header = ["run_id", "method", *keys, "action"]
    rows = [[p.run_id, p.spec["method"], *(_cell(p.spec[k]) for k in keys), p.action] for p in planned]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _log_tail(info: RunInfo, target: Target, state: str) -> None:
    tail = target.read_from(paths.runner_log(info.run_dir), 0).decode(errors="replace")
    log.error("%s ended %s; last lines of %s:\n%s", info.run_id, state, paths.runner_log(info.run_dir),
              "\n".join(tail.splitlines()[-15:]))


@dataclass
class _Launched:
    """A run set going (started, resumed, or found running), not yet followed; `state` is already
    known when there is nothing to follow (it ended ok while nobody followed and was recorded)."""

    info: RunInfo
    laptop: Any = None
    state: str | None = None


def _start(spec: dict[str, Any], target: Target, results: Path, after: Sequence[int] = ()) -> _Launched:
    laptop = laptop_meter(spec, target, results)
    return _Launched(start_metered(laptop, lambda: launch(spec, target, results, CODE_ROOT, after)), laptop)


def _continue(spec: dict[str, Any], target: Target, results: Path, checkpoints: bool) -> _Launched:
    """Follow a running run again, resume a stopped/failed/lost one, or record one that ended ok."""
    info = RunInfo.load(results, spec["run_id"])
    if not same_target(info.target, target.url):
        raise EbtError(f"{info.run_id} was started on {info.target}, not {target.url}: continue it with "
                       f"--target {info.target}, or rerun it here with --force")
    state = run_status(info, target, results).state
    if state == ev.OK:
        finalize(info, target, results, CODE_ROOT, checkpoints=checkpoints)
        return _Launched(info, state=state)
    if state not in (ev.RUNNING, ev.PENDING, *ev.RESUMABLE):
        raise EbtError(f"{info.run_id} is {state} on {info.target}; try again when it answers")
    laptop = laptop_meter(spec, target, results)
    if state in (ev.RUNNING, ev.PENDING):
        log.info("%s: %s on %s; following it again", info.run_id, state, info.target)
        if laptop:
            laptop.start()
        return _Launched(info, laptop)
    log.info("%s: %s; resuming it from its last checkpoint", info.run_id, state)
    return _Launched(start_metered(laptop, lambda: relaunch(info, target, results, CODE_ROOT)), laptop)


def _clear(spec: dict[str, Any], target: Target, results: Path) -> None:
    """Delete a run's folder on the target and its copy on the laptop (`--force`)."""
    rid = spec["run_id"]
    if _known(results, rid):
        info = RunInfo.load(results, rid)
        here = same_target(info.target, target.url)
        if here and run_status(info, target, results).state in (ev.RUNNING, ev.PENDING):
            raise EbtError(f"{rid} is still running on {info.target} (pid {info.pid}); stop it before "
                           f"--force reruns it, or follow it with `ebt attach {rid}`")
    target.remove(target.run_dir(rid))
    shutil.rmtree(paths.results_run(results, rid), ignore_errors=True)


def _set_going(p: Planned, target: Target, results: Path, checkpoints: bool, after: Sequence[int] = ()) -> _Launched:
    log.info("%s %s", p.action, p.run_id)
    if p.action == RERUN:
        _clear(p.spec, target, results)
    if p.action == CONTINUE:
        return _continue(p.spec, target, results, checkpoints)
    return _start(p.spec, target, results, after)


def _finish(going: _Launched, target: Target, results: Path, checkpoints: bool) -> bool:
    """Follow a run to its end and record it; whether it ended ok (if not, its log's tail is shown)."""
    try:
        state = going.state or follow_and_finish(going.info, target, results, CODE_ROOT, checkpoints,
                                                 going.laptop)
    except EbtError as err:
        log.error("%s", err)
        return False
    if state != ev.OK:
        _log_tail(going.info, target, state)
    return state == ev.OK


@dataclass
class _QueuedTrunk:
    """A trunk a scheduler runs as one job (None: it had already ended ok); `ok` once followed."""

    plan: Any  # harness.trunks.TrunkPlan
    job: Optional[int]
    ok: Optional[bool] = None


@dataclass
class _Shared:
    """What sharing settled before the runs start."""

    waiting: set[str] = field(default_factory=set)  # not started now: their trunk did not reach their epoch
    after: dict[str, list[int]] = field(default_factory=dict)  # scheduler: run id -> its trunk's job
    trunks: dict[str, _QueuedTrunk] = field(default_factory=dict)  # scheduler: run id -> its trunk


def _unstarted(p: Planned, target: Target, results: Path) -> bool:
    """A run a scheduler never started (its job cancelled while it waited for a trunk that failed): it
    starts afresh, so that it branches from the trunk again."""
    if not target.schedules_jobs or p.action != CONTINUE:
        return False
    info = RunInfo.load(results, p.run_id)
    return (same_target(info.target, target.url) and not target.read_from(paths.events(info.run_dir), 0)
            and not target.alive(info.pid))


def _share(planned: list[Planned], target: Target, results: Path) -> _Shared:
    """The shared trunks of the runs about to start afresh (`harness.trunks`). Elsewhere each is trained
    now, the laptop waiting; runs whose epoch it did not reach are not started. A scheduler gets each
    trunk as one job, and its branches (started with the rest) as jobs that wait for it to end ok."""
    from . import trunks

    fresh = [p for p in planned if p.action in (START, RERUN) or _unstarted(p, target, results)]
    for p in fresh:
        if p.action == RERUN:
            _clear(p.spec, target, results)
        p.action = START
    groups = trunks.group([p.spec for p in fresh], target)
    shared = _Shared()
    if not groups:
        return shared
    code_dir = target.prepare(CODE_ROOT)
    for g in groups:
        if target.schedules_jobs:
            job = trunks.start(g, target, code_dir)
            shared.trunks.update({rid: _QueuedTrunk(g, job) for rid in g.run_ids})
            shared.after.update({rid: [job] for rid in g.run_ids
                                 if job is not None and not trunks.seeded(target, target.run_dir(rid))})
        elif not trunks.run(g, target, code_dir, results):
            shared.waiting |= {rid for rid in g.run_ids if not trunks.seeded(target, target.run_dir(rid))}
    return shared


def _follow_trunk(trunk: _QueuedTrunk, target: Target, results: Path) -> None:
    """Wait for a trunk's job to end (its epochs logged), once; copy it to the laptop and say how it ended."""
    from . import trunks

    if trunk.ok is None:
        if trunk.job is not None:
            trunks.wait(target, trunk.plan, trunk.job)
        trunk.ok = trunks.finish(trunk.plan, target, results)


def _after_trunk(g: _Launched, shared: _Shared, target: Target, results: Path) -> Optional[_Launched]:
    """A run whose job waited for its trunk's, once the trunk has ended: itself when the trunk ended ok; when
    not, Slurm has cancelled its job (--kill-on-invalid-dep): run again if the trunk had reached its epoch
    before failing, else None (it waits for the trunk, said)."""
    from . import trunks

    rid = g.info.run_id
    trunk = shared.trunks[rid]
    _follow_trunk(trunk, target, results)
    if trunk.ok:
        return g
    target.cancel(g.info.pid)  # cancelled already, or about to be
    if trunks.seeded(target, target.run_dir(rid)):
        return _Launched(relaunch(g.info, target, results, CODE_ROOT))
    log.error("%s did not start: its trunk %s (job %d) ended %s before its epoch, and its job was cancelled; run "
              "the config again to resume the trunk", rid, trunk.plan.trunk_id, trunk.job,
              trunks.outcome(target, trunk.plan.run_dir))
    return None


def _follow_all(going: list[_Launched], shared: _Shared, target: Target, results: Path, checkpoints: bool) -> int:
    """Follow the runs a scheduler queued, in turn (a branch once its trunk has ended); how many failed."""
    failures = 0
    for g in going:
        if g.info.run_id in shared.after:
            try:
                g = _after_trunk(g, shared, target, results)
            except EbtError as err:
                log.error("%s", err)
                g = None
            if g is None:
                failures += 1
                continue
        failures += not _finish(g, target, results, checkpoints)
    for trunk in shared.trunks.values():  # trunks whose runs did not wait for them: copied once ended
        _follow_trunk(trunk, target, results)
    return failures


def execute(planned: list[Planned], target: Target, results: Path, checkpoints: bool = False,
            share: bool = True) -> int:
    """Run the plan; returns how many runs did not end ok (each is logged with its reason). With `share`,
    runs whose first phases are the same branch from one trunk that trains them once (`_share`). A
    scheduler target gets every run submitted before any is followed, so its nodes run them side by side;
    elsewhere runs go one after another (one board measures one run at a time)."""
    shared = _share(planned, target, results) if share else _Shared()
    failures, going = len(shared.waiting), []
    for p in planned:
        if p.action == SKIP:
            log.info("skip %s: done (ok record)", p.run_id)
            continue
        if p.run_id in shared.waiting:
            log.error("%s waits for its trunk's checkpoint: run the config again to resume the trunk", p.run_id)
            continue
        if p.action == OTHER_BOARD:
            failures += 1
            log.error("%s", p.note)
            continue
        try:
            going.append(_set_going(p, target, results, checkpoints, shared.after.get(p.run_id, ())))
        except EbtError as err:
            failures += 1
            log.error("%s", err)
            continue
        if not target.schedules_jobs:
            failures += not _finish(going.pop(), target, results, checkpoints)
    return failures + _follow_all(going, shared, target, results, checkpoints)
