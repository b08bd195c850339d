"""`ebt status`, `ebt attach RUN_ID`, `ebt resume RUN_ID`, `ebt fetch RUN_ID`: runs after `ebt run`.

Every run started by `ebt run` leaves `results/runs/<run_id>/run.json` (target, run folder, pid); these
commands work from it in any later shell, after the laptop slept or the link dropped.
State of a run: `finished` / `failed` (its `run_end` says so), `running` (no `run_end`, runner alive),
`lost` (no `run_end` and the runner is gone: killed, crashed, device rebooted -> `ebt resume`), or
`unreachable` (the target did not answer; the run may well go on there).

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
from typing import Dict, List, Optional

from ..laptop_meter import LaptopMeter
from ..lifecycle import RunInfo, follow_and_finish, laptop_meter, relaunch, start_metered
from ..targets import Target, open_target
from .run import CODE_ROOT

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


def _summary(events_bytes: bytes) -> Dict[str, object]:
    """Phase, epoch/total, last top-1 and end status from an events.jsonl's content."""
    out: Dict[str, object] = {"phase": "-", "epoch": "-", "top1": None, "end": None}
    for raw in events_bytes.splitlines():
        try:
            e = json.loads(raw)
        except ValueError:  # a torn last line of a live log
            continue
        kind = e.get("event")
        if kind == "phase_start":
            out["phase"] = e.get("phase", "-")
            out["epoch"] = "%s/%s" % (e.get("done", 0), e.get("epochs", "?"))
        elif kind == "epoch":
            out["epoch"] = "%s/%s" % (e.get("epoch"), e.get("epochs", "?"))
            out["top1"] = e.get("top1")
        elif kind == "run_end":
            out["end"] = e.get("status")
    return out


def _open(url: str, quick: bool = False) -> Target:
    target = open_target(url)
    if quick and hasattr(target, "reconnect_give_up_s"):
        target.reconnect_give_up_s = STATUS_GIVE_UP_S  # type: ignore[attr-defined]
    return target


def run_status(info: RunInfo, target: Optional[Target], results: Path) -> RunStatus:
    """The state of one run, asking its target unless the run's end is already on the laptop."""
    local_events = Path(results) / "runs" / info.run_id / "events.jsonl"
    status = RunStatus(info.run_id, info.target, info.state, launches=info.launches)
    if info.state in ("finished", "failed") and local_events.exists():
        summary = _summary(local_events.read_bytes())
        alive = False
    elif target is None:
        status.state = "unreachable"
        return status
    else:
        try:
            summary = _summary(target.read_from(info.run_dir + "/events.jsonl", 0))
            alive = target.alive(info.pid)
        except Exception as err:  # transport errors differ per target (OSError, paramiko's SSHException)
            log.debug("%s: %s", info.target, err)
            status.state = "unreachable"
            return status
    status.phase, status.epoch, status.top1 = summary["phase"], summary["epoch"], summary["top1"]  # type: ignore
    if summary["end"] == "ok":
        status.state = "finished"
    elif summary["end"] is not None:
        status.state = "failed"
    else:
        status.state = "running" if alive else "lost"
    return status


def all_runs(results: Path) -> List[RunInfo]:
    runs = []
    for path in sorted((Path(results) / "runs").glob("*/run.json")):
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
        print("no runs under %s" % (Path(args.results) / "runs"))
        return 0
    targets: Dict[str, Optional[Target]] = {}
    rows = []
    try:
        for info in runs:
            needs_target = not (info.state in ("finished", "failed")
                                and (Path(args.results) / "runs" / info.run_id / "events.jsonl").exists())
            if needs_target and info.target not in targets:
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
    for column in ("run", "target", "state", "phase", "epoch", "top1"):
        table.add_column(column)
    for r in rows:
        state = r.state + (" (resumed %dx)" % (r.launches - 1) if r.launches > 1 else "")
        table.add_row(r.run_id, r.target, state, str(r.phase), str(r.epoch),
                      "-" if r.top1 is None else "%.2f" % r.top1)
    Console(width=200).print(table)
    for r in rows:
        if r.state == "lost":
            print("%s: the runner is gone without finishing; continue it with `ebt resume %s`" % (r.run_id, r.run_id))
    return 0


def _laptop_meter(info: RunInfo, target: Target, results: Path) -> Optional[LaptopMeter]:
    spec = json.loads(target.read_from(info.run_dir + "/spec.json", 0) or b"{}")
    return laptop_meter(info.meter, info.meter_where, spec.get("meter_rate_hz") or 10.0, target, results,
                        info.run_id)


def _follow_and_finish(info: RunInfo, target: Target, args: argparse.Namespace,
                       laptop: Optional[LaptopMeter]) -> int:
    state = follow_and_finish(info, target, args.results, CODE_ROOT, args.checkpoints, laptop)
    return 0 if state == "finished" else 1


def cmd_attach(args: argparse.Namespace) -> int:
    info = RunInfo.load(args.results, args.run_id)
    target = _open(info.target)
    try:
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
        status = run_status(info, target, args.results)
        if status.state == "running":
            log.error("%s is still running on %s (pid %d): `ebt attach %s` follows it",
                      info.run_id, info.target, info.pid, info.run_id)
            return 1
        if status.state in ("finished", "failed"):
            log.error("%s already ended (%s); nothing to resume", info.run_id, status.state)
            return 1
        laptop = _laptop_meter(info, target, args.results)
        info = start_metered(laptop, lambda: relaunch(info, target, args.results, CODE_ROOT))
        return _follow_and_finish(info, target, args, laptop)
    finally:
        target.close()


def cmd_fetch(args: argparse.Namespace) -> int:
    info = RunInfo.load(args.results, args.run_id)
    target = _open(info.target)
    dest = Path(args.results) / "runs" / info.run_id
    try:
        target.fetch(info.run_dir, dest, checkpoints=args.checkpoints)
    finally:
        target.close()
    print("fetched %s:%s -> %s" % (info.target, info.run_dir, dest))
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
