"""Which kind of board a run ran on, and which kind a target is: a run done on one kind never stands in for
a run asked of another, and a laptop's CPU runs never stand in for a board's.

A kind of board is the record's `device` block `board` (the device-tree model on a Jetson, the DMI product
name on a PC) and `jetpack` (None off a Jetson). The power mode is not part of it: it is a spec key, so it
is already part of the run id. A target's kind comes from `python -m hw info` run there, the same code
(`hw.platform.device_info`) that writes the record's block, so both sides read the same files the same way.
A scheduler target's runs land on compute nodes, not on the machine it logs in to: its kind is unknown,
and a record then stands in only for runs asked of the same target URL.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from experiments import paths

from .targets import Target

log = logging.getLogger(__name__)

INFO_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Board:
    model: Optional[str]
    jetpack: Optional[str]

    @classmethod
    def of_device(cls, device: Optional[dict[str, Any]]) -> "Board":
        device = device or {}
        return cls(device.get("board"), device.get("jetpack"))

    def describe(self) -> str:
        return (self.model or "an unknown board") + (f" (JetPack {self.jetpack})" if self.jetpack else "")


@dataclass(frozen=True)
class Here:
    """Where `ebt run` is about to run: the target's URL and, when it can be read, its kind of board."""

    target: str
    board: Optional[Board]

    def describe(self) -> str:
        return f"{self.target}, {self.board.describe()}" if self.board else self.target


def target_board(target: Target, code_root: Path) -> Optional[Board]:
    """The target's kind of board (None for a scheduler target, or when `hw info` fails there: logged)."""
    if target.schedules_jobs:
        return None
    code_dir = target.prepare(code_root)
    run_module = target.run_module  # type: ignore[attr-defined]  # the local and SSH targets have it
    rc, out, err = run_module(code_dir, ["hw", "info"], timeout=INFO_TIMEOUT_S)
    lines = out.strip().splitlines()
    try:
        if rc == 0 and lines:
            return Board.of_device(json.loads(lines[-1]))
    except ValueError:
        pass
    log.warning("cannot read the board of %s (`python -m hw info`: %s); a record stands in only for runs of "
                "the same target", target.url, (err.strip().splitlines() or ["no output"])[-1])
    return None


def made_elsewhere(results: Path, run_id: str, here: Optional[Here]) -> Optional[str]:
    """Why the ok record of `run_id` does not stand in for a run asked `here`, or None when it does."""
    if here is None:
        return None
    try:
        record = json.loads((Path(paths.results_run(results, run_id)) / paths.RECORD).read_text())
    except (OSError, ValueError):
        return None
    made = Board.of_device(record.get("device"))
    if here.board is not None and made == here.board:
        return None
    if here.board is None and record.get("target") == here.target:
        return None
    where = made.describe() + (f" via {record.get('target')}" if record.get("target") else "")
    return (f"{run_id}: its ok record was made on {where}, not on {here.describe()}; use a results folder per "
            "kind of board (--results), or --force to replace it with a run here")
