"""The record's `conditions` block: the board's power mode, clocks and temperatures around a run, from the
runner's events (`board_set`, `board_restored`, and the `board` snapshot on each phase_start/phase_end).

Throttling: the snapshots carry the kernel's cumulative frequency residency (`hw.board.residency`), so the
time a phase's GPU (or CPU) spent below its mode's frequency cap is the difference of two counters, not a
sampled guess. With the clocks pinned to the cap (`clocks: max`, or found locked at every boundary) any
such time means the clocks fell below the mode's maximum: `throttled` is true when it exceeds
`THROTTLE_S`, false otherwise. Without pinned clocks the governor lowers them on its own, and without
the counters nothing was observed: `throttled` is then null.
"""
from __future__ import annotations

from typing import Any

from experiments import events as ev

THROTTLE_S = 1.0  # below-cap time of a pinned GPU that counts as throttling (counters tick in ms, transitions
# around a phase boundary take a few)


def _phase_rows(events: list[dict]) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    opened: dict[int, dict] = {}
    for e in events:
        snap = e.get("board")
        if snap is None or e["event"] not in (ev.PHASE_START, ev.PHASE_END):
            continue
        row = rows.setdefault(e["index"], {"name": e["phase"], "temperatures_start_c": snap.get("temperatures_c"),
                                           "temperatures_end_c": None, "gpu_below_max_s": None,
                                           "cpu_below_max_s": None})
        if e["event"] == ev.PHASE_START:
            opened[e["index"]] = snap
            continue
        row["temperatures_end_c"] = snap.get("temperatures_c")
        start = (opened.pop(e["index"], None) or {}).get("residency") or {}
        end = snap.get("residency") or {}
        for side in ("gpu", "cpu"):
            if side in start and side in end:
                row[f"{side}_below_max_s"] = (row[f"{side}_below_max_s"] or 0.0) + end[side][0] - start[side][0]
    return [rows[i] for i in sorted(rows)]


def _snapshots(events: list[dict]) -> list[dict]:
    return [e["board"] for e in events if e["event"] in (ev.PHASE_START, ev.PHASE_END) and e.get("board")]


def _throttled(pinned: bool | None, phases: list[dict]) -> bool | None:
    below = [p["gpu_below_max_s"] for p in phases if p["gpu_below_max_s"] is not None]
    if not pinned or not below:
        return None
    return sum(below) > THROTTLE_S


def conditions_block(events: list[dict]) -> dict[str, Any] | None:
    """The `conditions` of a run from its events; None for a log from before the runner recorded them."""
    sets = [e for e in events if e["event"] == ev.BOARD_SET]
    snaps = _snapshots(events)
    if not sets and not snaps:
        return None
    first = sets[0] if sets else {}
    restored = [e for e in events if e["event"] == ev.BOARD_RESTORED]
    after = restored[-1] if restored else {}
    during = list(dict.fromkeys(s.get("power_mode") for s in snaps if s.get("power_mode")))
    locks = [s.get("clocks_locked") for s in snaps]
    locked_during = None if not locks or None in locks else all(locks)
    phases = _phase_rows(events)
    pinned = locked_during or (first.get("clocks") == "max" and not first.get("error"))
    return {
        "power_mode": {"requested": first.get("requested"), "before": first.get("before"), "during": during,
                       "after": after.get("mode")},
        "clocks": {"requested": first.get("clocks"), "locked_before": first.get("locked_before"),
                   "locked_during": locked_during, "locked_after": after.get("locked")},
        "cooldown": first.get("cooldown"),
        "phases": phases,
        "throttled": _throttled(pinned, phases),
        "error": next((e["error"] for e in sets + restored if e.get("error")), None),
    }
