"""`ebt status`, `ebt attach RUN_ID`, `ebt resume RUN_ID`, `ebt fetch RUN_ID`, `ebt cancel RUN_ID|CONFIG`:
runs after `ebt run`.

Every run started by `ebt run` leaves `results/runs/<run_id>/run.json` (target, run folder, pid); these
commands work from it in any later shell, after the laptop slept or the link dropped. A run's state is
`experiments.events.outcome` of its log: the `run_end` status (`ok`, `stopped`, `failed`), `running`
(no `run_end`, runner alive) or `lost` (no `run_end`, runner gone: killed, crashed, board rebooted); plus
`unreachable` when the target did not answer (the run may well go on there). Stopped, failed and lost
runs resume from their last checkpoint. On a scheduler target (Slurm) the job's own state is shown beside
(`Target.job`), a queued job's run is `pending`, and `ebt cancel` cancels jobs.

A run whose meter hangs off the laptop (`meter_where: laptop`) gets a new laptop sampling session for
the time `attach`/`resume` follow it (harness.laptop_meter); while nobody follows, nothing samples it,
and the record's per-phase coverage shows that hole.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from experiments import events as ev
from experiments import paths

from .. import CODE_ROOT
from ..errors import EbtError, UsageError
from ..lifecycle import (
    RunInfo,
    finalize,
    follow_and_finish,
    laptop_meter,
    relaunch,
    start_metered,
)
from ..status import record_written, run_status
from ..targets import Target, open_target
from . import options

if TYPE_CHECKING:
    from ..laptop_meter import LaptopMeters

log = logging.getLogger(__name__)

# `ebt status` must answer promptly even when a board is off: give up reconnecting quickly.
STATUS_GIVE_UP_S = 10.0
STOP_WAIT_S = 60.0  # a runner stops at its next batch after SIGTERM; a slow board's batch takes seconds
NOT_FETCHED = "ok, not fetched"  # `ebt status` for a run that ended ok whose record is not written yet


def _open(url: str, quick: bool = False) -> Target:
    target = open_target(url)
    if quick and hasattr(target, "reconnect_give_up_s"):
        target.reconnect_give_up_s = STATUS_GIVE_UP_S  # type: ignore[attr-defined]
    return target


def all_runs(results: Path) -> list[RunInfo]:
    runs = []
    for path in sorted(Path(paths.results_runs(results)).glob("*/" + paths.RUN_INFO)):
        try:
            runs.append(RunInfo.load(results, path.parent.name))
        except (ValueError, TypeError) as err:
            log.warning("skipping %s: %s", path, err)
    return runs


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    runs = all_runs(args.results)
    if not runs:
        print("no runs under %s" % paths.results_runs(args.results))
        return 0
    targets: dict[str, Optional[Target]] = {}
    rows = []
    try:
        for info in runs:
            if info.target not in targets:  # opening connects lazily: only runs not ended here use it
                try:
                    targets[info.target] = _open(info.target, quick=True)
                except Exception as err:  # a bad URL in an old run.json must not hide the other runs
                    log.warning("%s: %s", info.target, err)
                    targets[info.target] = None
            rows.append(run_status(info, targets.get(info.target), args.results))
    finally:
        for t in targets.values():
            if t is not None:
                t.close()
    table = Table(box=None)
    jobs = any(r.job != "-" for r in rows)
    where = ("runner",) if args.where else ()
    for column in ("run", "target", "state", "phase", "epoch", "top1") + (("job",) if jobs else ()) + where:
        table.add_column(column)
    unfetched = {r.run_id for r in rows if r.state == ev.OK and not record_written(args.results, r.run_id)}
    for info, r in zip(runs, rows):
        state = (NOT_FETCHED if r.run_id in unfetched else r.state)
        state += " (resumed %dx)" % (r.launches - 1) if r.launches > 1 else ""
        handle = getattr(targets.get(info.target), "handle_word", "pid")
        table.add_row(r.run_id, r.target, state, str(r.phase), str(r.epoch),
                      "-" if r.top1 is None else "%.2f" % r.top1, *((r.job,) if jobs else ()),
                      *((f"{handle} {info.pid} in {info.run_dir}",) if where else ()))
    Console(width=200).print(table)
    from ..trunks import status_lines
    for line in status_lines(args.results):  # the shared trunks the runs branched from
        print(line)
    for r in rows:
        if r.state in ev.RESUMABLE:
            print("%s: %s; continue it with `ebt resume %s`" % (r.run_id, r.state, r.run_id))
        elif r.run_id in unfetched:
            print("%s: ended ok on %s, no record yet; `ebt attach %s` fetches it and writes it"
                  % (r.run_id, r.target, r.run_id))
    return 0


def _laptop_meter(info: RunInfo, target: Target, results: Path) -> Optional["LaptopMeters"]:
    spec = json.loads(target.read_from(paths.spec(info.run_dir), 0) or b"{}")
    return laptop_meter(dict(spec, meter=info.meter, meter_where=info.meter_where, run_id=info.run_id),
                        target, results)


def _follow_and_finish(info: RunInfo, target: Target, args: argparse.Namespace,
                       laptop: Optional["LaptopMeters"]) -> int:
    try:
        state = follow_and_finish(info, target, args.results, CODE_ROOT, args.checkpoints, laptop)
    except KeyboardInterrupt:
        log.error("interrupted; %s goes on on %s (%s %d). Stop it: `ebt cancel %s`; follow it again: "
                  "`ebt attach %s`", info.run_id, info.target, target.handle_word, info.pid, info.run_id,
                  info.run_id)
        return 130
    return 0 if state == ev.OK else 1


def cmd_attach(args: argparse.Namespace) -> int:
    info = RunInfo.load(args.results, args.run_id)
    target = _open(info.target)
    try:
        state = run_status(info, target, args.results).state
        if state in ev.ENDED:  # ended while nobody followed: fetch it and write its record
            finalize(info, target, args.results, CODE_ROOT, checkpoints=args.checkpoints)
            return 0 if state == ev.OK else 1
        laptop = _laptop_meter(info, target, args.results)
        if laptop:
            laptop.start()
        return _follow_and_finish(info, target, args, laptop)
    finally:
        target.close()


def cmd_resume(args: argparse.Namespace) -> int:
    info = RunInfo.load(args.results, args.run_id)
    target = _open(info.target)
    try:
        state = run_status(info, target, args.results).state
        if state == ev.RUNNING:
            raise EbtError(f"{info.run_id} is still running on {info.target} (pid {info.pid}): "
                           f"`ebt attach {info.run_id}` follows it")
        if state not in ev.RESUMABLE:
            raise EbtError(f"{info.run_id} is {state}; only {', '.join(ev.RESUMABLE)} runs resume")
        laptop = _laptop_meter(info, target, args.results)
        info = start_metered(laptop, lambda: relaunch(info, target, args.results, CODE_ROOT))
        return _follow_and_finish(info, target, args, laptop)
    finally:
        target.close()


def cmd_fetch(args: argparse.Namespace) -> int:
    info = RunInfo.load(args.results, args.run_id)
    target = _open(info.target)
    dest = Path(paths.results_run(args.results, info.run_id))
    try:
        target.fetch(info.run_dir, dest, checkpoints=args.checkpoints)
    finally:
        target.close()
    print("fetched %s:%s -> %s" % (info.target, info.run_dir, dest))
    return 0


def _to_cancel(args: argparse.Namespace) -> list[RunInfo]:
    """The runs named by RUN_ID, or every known run of the config file SWEEP."""
    if not Path(args.what).is_file():
        return [RunInfo.load(args.results, args.what)]
    from ..config import load_specs, parse_overrides  # imports torch: only for a config
    ids = [s["run_id"] for s in load_specs(Path(args.what), parse_overrides(args.overrides), results=args.results)]
    known = [RunInfo.load(args.results, i) for i in ids if RunInfo.path(args.results, i).exists()]
    if not known:
        raise UsageError(f"none of the {len(ids)} runs of {args.what} was started from {args.results} "
                         "(same --set options as for `ebt run`?)")
    return known


def _wait_ended(info: RunInfo, target: Target, results: Path) -> str:
    """The run's state once its runner is gone (it ends `stopped` after SIGTERM), or `running` after
    STOP_WAIT_S."""
    deadline = time.monotonic() + STOP_WAIT_S
    while True:
        state = run_status(info, target, results).state
        if state != ev.RUNNING or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _cancel_one(info: RunInfo, target: Target, results: Path) -> None:
    """A runner the target started itself: SIGTERM, then wait until it has ended."""
    state = run_status(info, target, results).state
    if state != ev.RUNNING:
        print(f"{info.run_id}: not running ({state}); nothing to stop")
        return
    said = target.cancel(info.pid) or f"{target.handle_word} {info.pid} stopped"
    state = _wait_ended(info, target, results)
    if state == ev.RUNNING:
        print(f"{info.run_id}: {said}, but it still runs after {STOP_WAIT_S:.0f} s; `ebt status --where` "
              "shows where")
    else:
        print(f"{info.run_id}: {said}; now {state}; `ebt resume {info.run_id}` (or `ebt run` of its config) "
              "continues it from its last checkpoint")


def _cancel_jobs(infos: list[RunInfo], target: Target, results: Path) -> None:
    """Runs that are scheduler jobs: one query for all their jobs, then one cancel for those still queued
    or running (Slurm: one `scancel` per batch of ids, not one round trip per run)."""
    jobs = target.jobs([info.pid for info in infos])
    going = []
    for info in infos:
        job = jobs.get(int(info.pid))
        state = run_status(info, target, results).state if job is None else ev.RUNNING
        if job is not None and not job.alive:
            print(f"{info.run_id}: job {job.job_id} already {job.state}")
        elif state != ev.RUNNING:  # Slurm forgot the job; its log says how the run ended
            print(f"{info.run_id}: not running ({state}); nothing to stop")
        else:
            going.append(info)
    target.cancel_jobs([info.pid for info in going])
    for info in going:
        print(f"{info.run_id}: job {info.pid} cancelled; `ebt resume {info.run_id}` continues it later")


def cmd_cancel(args: argparse.Namespace) -> int:
    """Stop the runner (or cancel the scheduler job) of a run or of a sweep's runs: each stops at a
    checkpoint, resumable. A scheduler's jobs are cancelled together, per target."""
    by_target: dict[str, list[RunInfo]] = {}
    for info in _to_cancel(args):
        by_target.setdefault(info.target, []).append(info)
    for url, infos in by_target.items():
        target = _open(url)
        try:
            if target.schedules_jobs:
                _cancel_jobs(infos, target, args.results)
            else:
                for info in infos:
                    _cancel_one(info, target, args.results)
        finally:
            target.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        options.results(p)

    p = sub.add_parser("status", help="every run: target, phase, epoch, state (running/ok/stopped/failed/lost/unreachable)")
    p.add_argument("--where", action="store_true",
                   help="also show where each runner lives: its pid (a Slurm job id) and run folder on the target")
    common(p)
    p.set_defaults(func=cmd_status)

    for name, func, text in (
        ("attach", cmd_attach, "follow a running run again (after the laptop slept or the link dropped), "
                               "then fetch it and write its record"),
        ("resume", cmd_resume, "restart a lost run on its target from its last checkpoint and follow it"),
        ("fetch", cmd_fetch, "copy a run's folder from its target into results/runs/RUN_ID/"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("run_id", metavar="RUN_ID")
        p.add_argument("--checkpoints", action="store_true", help="also fetch checkpoints and tickets")
        common(p)
        p.set_defaults(func=func)

    p = sub.add_parser("cancel", help="stop a run, or every run of a config, on any target",
                       description="Stop RUN_ID, or every run of the config file SWEEP: a local or SSH runner "
                                   "gets SIGTERM (this waits until it has ended), a Slurm job is cancelled "
                                   "(scancel). The run saves its checkpoint and ends `stopped`; `ebt resume` "
                                   "or rerunning the config continues it.")
    p.add_argument("what", metavar="RUN_ID|SWEEP", help="a run id, or the config file the sweep was run from")
    options.overrides(p, "the --set options the sweep was run with (they are part of its run ids)")
    common(p)
    p.set_defaults(func=cmd_cancel)
