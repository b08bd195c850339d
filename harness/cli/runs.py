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
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from experiments import events as ev
from experiments import paths
from hw.fileio import parse_jsonl

from ..errors import EbtError, UsageError
from ..laptop_meter import LaptopMeters
from ..lifecycle import RunInfo, finalize, follow_and_finish, laptop_meter, relaunch, start_metered
from .. import CODE_ROOT
from ..targets import Target, open_target
from ..targets.base import Job

log = logging.getLogger(__name__)

# `ebt status` must answer promptly even when a board is off: give up reconnecting quickly.
STATUS_GIVE_UP_S = 10.0


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


def _open(url: str, quick: bool = False) -> Target:
    target = open_target(url)
    if quick and hasattr(target, "reconnect_give_up_s"):
        target.reconnect_give_up_s = STATUS_GIVE_UP_S  # type: ignore[attr-defined]
    return target


def _local_log(results: Path, info: RunInfo) -> Path:
    return Path(paths.events(paths.results_run(results, info.run_id)))


def _ended_here(results: Path, info: RunInfo) -> bool:
    """Whether the run's end is already on the laptop (no need to ask its target)."""
    return info.state in ev.ENDED and _local_log(results, info).exists()


def run_status(info: RunInfo, target: Optional[Target], results: Path) -> RunStatus:
    """The state of one run, asking its target unless the run's end is already on the laptop."""
    status = RunStatus(info.run_id, info.target, info.state, launches=info.launches)
    if _ended_here(results, info):
        summary, alive = _Summary.of(_local_log(results, info).read_bytes()), False
    elif target is None:
        status.state = ev.UNREACHABLE
        return status
    else:
        try:
            summary = _Summary.of(target.read_from(paths.events(info.run_dir), 0))
            alive = target.alive(info.pid)
        except Exception as err:  # transport errors differ per target (OSError, paramiko's SSHException)
            log.debug("%s: %s", info.target, err)
            status.state = ev.UNREACHABLE
            return status
    status.phase, status.epoch, status.top1 = summary.phase, summary.epoch, summary.top1
    status.state = ev.outcome(summary.events, alive)
    job = _job(info, target)
    if job is not None:
        status.job = job.describe()
        if not _ended_here(results, info):
            status.state = job.run_state(summary.events)
    return status


def _job(info: RunInfo, target: Optional[Target]) -> Optional[Job]:
    """The scheduler's view of the run's job (None without a scheduler, or when it did not answer)."""
    try:
        return target.job(info.pid) if target is not None else None
    except Exception as err:  # transport errors differ per target
        log.debug("%s: %s", info.target, err)
        return None


def all_runs(results: Path) -> List[RunInfo]:
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
    targets: Dict[str, Optional[Target]] = {}
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
    for column in ("run", "target", "state", "phase", "epoch", "top1") + (("job",) if jobs else ()):
        table.add_column(column)
    for r in rows:
        state = r.state + (" (resumed %dx)" % (r.launches - 1) if r.launches > 1 else "")
        table.add_row(r.run_id, r.target, state, str(r.phase), str(r.epoch),
                      "-" if r.top1 is None else "%.2f" % r.top1, *((r.job,) if jobs else ()))
    Console(width=200).print(table)
    for r in rows:
        if r.state in ev.RESUMABLE:
            print("%s: %s; continue it with `ebt resume %s`" % (r.run_id, r.state, r.run_id))
    return 0


def _laptop_meter(info: RunInfo, target: Target, results: Path) -> Optional[LaptopMeters]:
    spec = json.loads(target.read_from(paths.spec(info.run_dir), 0) or b"{}")
    return laptop_meter(dict(spec, meter=info.meter, meter_where=info.meter_where, run_id=info.run_id),
                        target, results)


def _follow_and_finish(info: RunInfo, target: Target, args: argparse.Namespace,
                       laptop: Optional[LaptopMeters]) -> int:
    state = follow_and_finish(info, target, args.results, CODE_ROOT, args.checkpoints, laptop)
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
    ids = [s["run_id"] for s in load_specs(Path(args.what), parse_overrides(args.overrides))]
    known = [RunInfo.load(args.results, i) for i in ids if RunInfo.path(args.results, i).exists()]
    if not known:
        raise UsageError(f"none of the {len(ids)} runs of {args.what} was started from {args.results} "
                         "(same --set options as for `ebt run`?)")
    return known


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancel the scheduler jobs of a run or of a sweep's runs (their runners stop at a checkpoint)."""
    targets: dict[str, Target] = {}
    try:
        for info in _to_cancel(args):
            target = targets.setdefault(info.target, _open(info.target))
            job = target.job(info.pid)
            if job is not None and not job.alive:
                print(f"{info.run_id}: job {job.job_id} already {job.state}")
                continue
            target.cancel(info.pid)  # targets without a scheduler say how to stop a runner instead
            print(f"{info.run_id}: job {info.pid} cancelled; `ebt resume {info.run_id}` continues it later")
    finally:
        for t in targets.values():
            t.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")

    p = sub.add_parser("status", help="every run: target, phase, epoch, state (running/finished/failed/lost)")
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

    p = sub.add_parser("cancel", help="cancel the Slurm job of a run, or of every run of a config",
                       description="Cancel (scancel) the job of RUN_ID, or the jobs of every run of the config "
                                   "file SWEEP; a cancelled run stops at its last checkpoint (`ebt resume`).")
    p.add_argument("what", metavar="RUN_ID|SWEEP", help="a run id, or the config file the sweep was run from")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="the --set options the sweep was run with (they are part of its run ids)")
    common(p)
    p.set_defaults(func=cmd_cancel)
