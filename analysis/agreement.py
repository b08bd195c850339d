"""Agreement between two power meters on one board (`ebt meters agree`), after MLPerf Power's acceptance of
a cheaper meter against a reference one: idle and two loads, five windows at each, each level scored
Olympic-style (the highest and lowest window dropped, the other three averaged).

Meter A is the one being checked, meter B the reference: every figure is B in terms of A.

* `ratio` = mean over the levels of each level's Olympic mean of the per-window ratios B/A; its
  uncertainty `ratio_uncertainty` = 2 standard errors of the kept window ratios (their spread) plus the
  two meters' accuracy classes at the lowest level (rel + abs / power of each; worst case, as
  `hw.energy` adds its terms), so a ratio is never claimed better than the instruments allow.
* `gain`, `offset_w`: the least-squares line B = gain x A + offset through the three levels' Olympic
  means, with 2 standard errors from the residuals (`gain_uncertainty`, `offset_uncertainty_w`, the
  offset's also plus both meters' absolute terms).

A stored agreement is one JSON file `results/calibrations/<name>.json` (`experiments.paths`), its name
made of the board and both meter specs (`calibration_name`). A run that names it in the spec key
`meter_calibration` has its primary meter's energies multiplied by `ratio` (`correction`), and the
record says so.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments import paths
from hw.fileio import atomic_write_json

WINDOWS = 5  # per level: MLPerf's five windows
LEVELS = ("idle", "low", "high")


class AgreementError(ValueError):
    """Too few windows, a meter that read nothing, or a stored agreement that is missing or for another meter."""


def olympic(values: list[float]) -> tuple[float, list[float]]:
    """The mean of `values` without its highest and lowest one (five windows -> three), and those kept."""
    if len(values) < 3:
        raise AgreementError(f"Olympic scoring needs at least 3 windows, got {len(values)}")
    kept = sorted(values)[1:-1]
    return float(np.mean(kept)), kept


@dataclass(frozen=True)
class Level:
    """One load level: each window's mean W from meter A and meter B."""
    name: str
    a_w: list[float]
    b_w: list[float]

    def scored(self) -> dict[str, Any]:
        if any(a is None or b is None for a, b in zip(self.a_w, self.b_w)) or min(self.a_w) <= 0:
            raise AgreementError(f"level {self.name}: a window without a positive reading from both meters "
                                 f"(A {self.a_w}, B {self.b_w})")
        ratio, kept = olympic([b / a for a, b in zip(self.a_w, self.b_w)])
        return {"name": self.name, "a_w": olympic(self.a_w)[0], "b_w": olympic(self.b_w)[0], "ratio": ratio,
                "kept_ratios": kept, "windows_a_w": list(self.a_w), "windows_b_w": list(self.b_w)}


def _instrument_rel(levels: list[dict], acc_a: tuple[float, float], acc_b: tuple[float, float]) -> float:
    """Both meters' accuracy classes as a share of the reading, at the level where it is largest."""
    return max(acc_a[0] + acc_a[1] / lv["a_w"] + acc_b[0] + acc_b[1] / lv["b_w"] for lv in levels)


def _fit(levels: list[dict]) -> tuple[float, float, float | None, float | None]:
    """(gain, offset, 2 s.e. of each) of B = gain x A + offset through the levels' means."""
    a = np.array([lv["a_w"] for lv in levels])
    b = np.array([lv["b_w"] for lv in levels])
    if np.ptp(a) <= 0:
        return float(np.mean(b / a)), 0.0, None, None
    design = np.vstack([a, np.ones_like(a)]).T
    (gain, offset), *_ = np.linalg.lstsq(design, b, rcond=None)
    dof = len(a) - 2
    if dof < 1:
        return float(gain), float(offset), None, None
    resid = b - (gain * a + offset)
    cov = float(np.sum(resid ** 2)) / dof * np.linalg.inv(design.T @ design)
    return float(gain), float(offset), 2 * math.sqrt(cov[0, 0]), 2 * math.sqrt(cov[1, 1])


def agreement(levels: list[Level], acc_a: tuple[float, float], acc_b: tuple[float, float]) -> dict[str, Any]:
    """The ratio, gain and offset of B against A with their uncertainties; acc_* = (accuracy_rel, abs_w)."""
    scored = [lv.scored() for lv in levels]
    kept = [r for lv in scored for r in lv["kept_ratios"]]
    ratio = float(np.mean([lv["ratio"] for lv in scored]))
    spread = 2 * float(np.std(kept, ddof=1)) / math.sqrt(len(kept)) if len(kept) > 1 else 0.0
    instrument = ratio * _instrument_rel(scored, acc_a, acc_b)
    gain, offset, gain_u, offset_u = _fit(scored)
    return {"ratio": ratio, "ratio_uncertainty": spread + instrument,
            "ratio_uncertainty_terms": {"spread": spread, "instrument": instrument},
            "gain": gain, "gain_uncertainty": gain_u, "offset_w": offset,
            "offset_uncertainty_w": None if offset_u is None else offset_u + acc_a[1] + acc_b[1],
            "levels": scored}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "none"


def calibration_name(board: str | None, meter_a: str, meter_b: str) -> str:
    """`<board>__<meter A>__vs__<meter B>`, each made file-name safe."""
    return f"{_slug(board or 'unknown-board')}__{_slug(meter_a)}__vs__{_slug(meter_b)}"


def store(results: Path, calibration: dict[str, Any]) -> Path:
    path = Path(paths.calibration(results, calibration["name"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, calibration)
    return path


def load(results: Path, name: str) -> dict[str, Any]:
    """The stored agreement `name`; AgreementError naming the folder and the command that makes one."""
    path = Path(paths.calibration(results, name))
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        have = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
        raise AgreementError(f"no stored meter agreement {name!r} in {path.parent} (have: {', '.join(have) or 'none'});"
                             " make one with `ebt meters agree --meter A --meter B`") from err
    except (OSError, ValueError) as err:
        raise AgreementError(f"stored meter agreement {path} is unreadable: {err}") from err


def load_all(folder: Path) -> list[dict[str, Any]]:
    """Every stored agreement in `folder` (none when it does not exist)."""
    folder = Path(folder)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is no agreement
    return out


def correction(calibration: dict[str, Any], meter_spec: str | None) -> dict[str, Any]:
    """The record's correction block for a run whose primary meter is `meter_spec`; AgreementError when the
    agreement was made for another meter."""
    if meter_spec != calibration.get("meter_a"):
        raise AgreementError(f"meter agreement {calibration.get('name')!r} checks meter {calibration.get('meter_a')!r}"
                             f", but this run's meter is {meter_spec!r}")
    return {"calibration": calibration["name"], "ratio": calibration["ratio"],
            "ratio_uncertainty": calibration["ratio_uncertainty"], "reference": calibration.get("meter_b"),
            "board": calibration.get("board")}


def check_specs(results: Path, specs: list[dict[str, Any]]) -> None:
    """AgreementError unless every spec's `meter_calibration` is stored and made for its primary meter."""
    for spec in specs:
        if spec.get("meter_calibration"):
            correction(load(results, spec["meter_calibration"]), spec.get("meter"))
