"""Shared trunks of a sweep: runs whose first phases are the same train them once (`experiments.trunk`).

Before its runs start, a sweep groups the runs it starts afresh by trunk id (a digest of the identity of
their first phase). A group of two or more gets a trunk on the target, in `paths.trunk_dir(root, id)`
beside the run folders: it is launched like a run, trains the shared phase once, and writes each branch's
run folder as the run alone would have it at its cut epoch. The runs are then started as usual and go on
from there. A trunk folder already on the target (an earlier, interrupted sweep) is resumed with the
branches it was made for; a run it was not made for runs alone. Run ids never depend on sharing.

On a scheduler (Slurm) the trunk is one job and its branches are jobs submitted at once that wait for it
(`afterok`), so the laptop does not block and the nodes run the branches side by side. They start once
the trunk's job has ended, not at their own epoch: a job waiting on the shared filesystem for its
checkpoint would hold a node (a measured board) idle, and could not tell a trunk that will never run.
A failed trunk gets its waiting branches cancelled by Slurm (`--kill-on-invalid-dep=yes`), never left
pending.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments import events as ev
from experiments import paths

from .targets import Target

log = logging.getLogger(__name__)

POLL_S = 0.5


@dataclass
class TrunkPlan:
    trunk_id: str
    run_dir: str                      # the trunk's folder on the target
    spec: dict[str, Any]              # its spec.json (`experiments.trunk.trunk_spec`)
    run_ids: list[str] = field(default_factory=list)  # the runs that branch from it


def group(specs: list[dict[str, Any]], target: Target) -> list[TrunkPlan]:
    """The trunks of runs about to start afresh: one per trunk id shared by two or more of them (or
    already on the target with branches among them)."""
    from experiments import trunk as tk  # imports torch: only when running

    by_id: dict[str, list[dict]] = {}
    for spec in specs:
        tid = tk.trunk_id(spec)
        if tid is not None:
            by_id.setdefault(tid, []).append(spec)
    plans = []
    for tid, members in by_id.items():
        folder = paths.trunk_beside(target.run_dir(members[0]["run_id"]), tid)
        existing = _existing(target, folder)
        if existing is not None and _spent(target, folder, members):
            log.info("%s has ended and its runs' folders are gone (--force): training it again", tid)
            target.remove(folder)
            existing = None
        if existing is None and len(members) < 2:
            continue
        if existing is None:
            spec = tk.trunk_spec(tid, [(s, target.run_dir(s["run_id"])) for s in members])
        else:
            spec = existing
        listed = {b["spec"]["run_id"] for b in spec[paths.TRUNK_KEY]["branches"]}
        alone = [s["run_id"] for s in members if s["run_id"] not in listed]
        if alone:
            log.info("%s was made for other runs: %s run alone", tid, ", ".join(alone))
        mine = [s["run_id"] for s in members if s["run_id"] in listed]
        if mine:
            plans.append(TrunkPlan(tid, folder, spec, mine))
    return plans


def _spent(target: Target, folder: str, members: list[dict]) -> bool:
    """A finished trunk that can no longer seed runs about to start (their folders were cleared)."""
    return outcome(target, folder) == ev.OK and not all(seeded(target, target.run_dir(s["run_id"]))
                                                         for s in members)


def _existing(target: Target, folder: str) -> dict | None:
    raw = target.read_from(paths.spec(folder), 0)
    return json.loads(raw) if raw else None


def outcome(target: Target, folder: str) -> str:
    """The trunk's state when its runner is not running (a log without an end: lost)."""
    return ev.outcome(_events(target, folder), alive=False)


def seeded(target: Target, run_dir: str) -> bool:
    """Whether the trunk has written the run's folder (its link is written last)."""
    return bool(target.read_from(paths.branch(run_dir), 0))


def _events(target: Target, folder: str) -> list[dict]:
    lines = target.read_from(paths.events(folder), 0).decode(errors="replace").splitlines()
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line
    return out


def start(plan: TrunkPlan, target: Target, code_dir: str) -> int | None:
    """Launch (or resume) the trunk unless it has ended ok; its pid (a scheduler's job id), else None.
    On a scheduler an earlier sweep's job of it still queued or running is followed, not submitted again."""
    if outcome(target, plan.run_dir) == ev.OK:
        return None
    log.info("%s: training the shared first phase of %s once", plan.trunk_id, ", ".join(plan.run_ids))
    return target.launch(code_dir, plan.spec, plan.run_dir).pid


def run(plan: TrunkPlan, target: Target, code_dir: str, results: Path) -> bool:
    """Train the trunk to its end (resuming it when it was interrupted); whether it ended ok."""
    pid = start(plan, target, code_dir)
    if pid is not None:
        wait(target, plan, pid)
    return finish(plan, target, results)


def finish(plan: TrunkPlan, target: Target, results: Path) -> bool:
    """Whether the trunk (no longer running) ended ok, said in the log. Its events and power trace are
    copied to `results/trunks/<id>/`, which branches' records bill."""
    state = outcome(target, plan.run_dir)
    target.fetch(plan.run_dir, Path(paths.results_trunk(results, plan.trunk_id)))
    if state != ev.OK:
        tail = target.read_from(paths.runner_log(plan.run_dir), 0).decode(errors="replace")
        log.error("%s ended %s; its branches not yet seeded wait for it; last lines of its log:\n%s",
                  plan.trunk_id, state, "\n".join(tail.splitlines()[-15:]))
        return False
    epochs = sum(e["event"] == ev.EPOCH for e in _events(target, plan.run_dir))
    log.info("%s: done, %d epoch(s) trained for %d runs", plan.trunk_id, epochs, len(plan.run_ids))
    return True


def fetch_for(dest: Path, target: Target, results: Path) -> None:
    """Copy the trunk a fetched run folder branched from to `results/trunks/<id>/` unless its ended copy
    is there: its record bills the trunk's epochs (a branch may end where no sweep waited for its trunk,
    e.g. a Slurm job that depended on the trunk's)."""
    link = next((e for e in ev.read_events(paths.events(dest)) if e["event"] == ev.BRANCH), None)
    if link is None:
        return
    copy = Path(paths.results_trunk(results, link["trunk"]))
    if ev.last_end(ev.read_events(paths.events(copy))) is None:
        target.fetch(link["trunk_dir"], copy)


def status_lines(results: Path) -> list[str]:
    """One line per trunk the laptop has copied: its state, epochs trained, and its branches' cuts."""
    lines = []
    for folder in sorted(Path(results, paths.TRUNKS).glob("*/" + paths.SPEC)):
        branches = json.loads(folder.read_text())[paths.TRUNK_KEY]["branches"]
        events = ev.read_events(paths.events(folder.parent))
        epochs = max((e["epoch"] for e in events if e["event"] == ev.EPOCH), default=0)
        names = ", ".join(b["spec"]["run_id"] for b in branches)
        lines.append(f"{folder.parent.name}: {ev.outcome(events, alive=False)}, {epochs} epoch(s) trained once "
                     f"for {len(branches)} runs: {names}")
    return lines


def wait(target: Target, plan: TrunkPlan, pid: int) -> None:
    """Until the trunk's runner ends, logging each epoch it trains."""
    seen = len(_events(target, plan.run_dir))
    while target.alive(pid):
        time.sleep(POLL_S)
        events = _events(target, plan.run_dir)
        for e in events[seen:]:
            if e["event"] == ev.EPOCH:
                log.info("%s: epoch %d, top-1 %.2f%%", plan.trunk_id, e["epoch"], e["top1"])
        seen = len(events)
