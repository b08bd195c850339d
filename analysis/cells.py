"""The one definition of a cell: the runs that every table row, figure point and Improv. figure averages.

A cell is the set of runs whose resolved specs (the record's `config`) are identical except for the seed,
the run id and where the meters were sampled (`SAMPLING_ONLY`), and which ran on the same board (the
record's `device.board` and `device.jetpack`: a laptop's CPU runs never share a cell with a board's;
the power mode is a spec key, so it separates cells like any other). Nothing is averaged across cells.

`cell_spec` is what identifies a cell; `digest` names it (and, with keys dropped, the wider groups the
report needs: the methods compared in one Improv. row share a spec apart from `method` and
`prune_ratio`; the points of one Fig 1 curve share a spec apart from `eb_draw_epoch`). `label` says in
`key=value` words how cells that share a table row's key differ, so a reader of one row knows what ran.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from experiments.spec import SET_BY_HARNESS

# Keys that differ between the seeds of one experiment, or only say where a meter hung.
SAMPLING_ONLY = SET_BY_HARNESS
SEED = "seed"
NOT_CELL = (SEED, *SAMPLING_ONLY)
BOARD_KEYS = ("board", "jetpack")  # from the record's `device` block, prefixed `device.` in the cell spec
# Keys a table row already shows, so a label does not repeat them.
ROW_KEYS = ("method", "arch", "depth", "dataset", "prune_ratio")
DIGEST_CHARS = 8


def cell_spec(record: dict[str, Any]) -> dict[str, Any]:
    """The identity of a record's cell: its resolved spec but `NOT_CELL`, plus the board it ran on."""
    config = record.get("config") or {}
    spec = {k: v for k, v in config.items() if k not in NOT_CELL}
    device = record.get("device") or {}
    spec.update({f"device.{k}": device.get(k) for k in BOARD_KEYS})
    return spec


def digest(spec: dict[str, Any], drop: Iterable[str] = ()) -> str:
    """A short name for `spec` without the keys `drop`: equal specs, equal names."""
    dropped = set(drop)
    body = {k: v for k, v in spec.items() if k not in dropped}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def differing(specs: Sequence[dict[str, Any]], skip: Iterable[str] = ROW_KEYS) -> list[str]:
    """The keys whose values are not the same in every spec (sorted), leaving out `skip`."""
    skipped = set(skip)
    keys = sorted({k for s in specs for k in s} - skipped)
    return [k for k in keys if len({json.dumps(s.get(k), sort_keys=True, default=str) for s in specs}) > 1]


def label(spec: dict[str, Any], keys: Iterable[str]) -> str:
    """`k=v, k=v` for `keys` of `spec` (a list as `[a,b]`, null as `null`)."""
    return ", ".join(f"{k}={_text(spec.get(k))}" for k in keys)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def labels(specs: dict[str, dict[str, Any]], groups: dict[str, str]) -> dict[str, str]:
    """cell -> the label that tells it apart from the other cells of its group (`groups`: cell -> group);
    a cell alone in its group gets ''."""
    members: dict[str, list[str]] = {}
    for cell, group in groups.items():
        members.setdefault(group, []).append(cell)
    out = {}
    for cells in members.values():
        keys = differing([specs[c] for c in cells]) if len(cells) > 1 else []
        out.update({c: label(specs[c], keys) for c in cells})
    return out
