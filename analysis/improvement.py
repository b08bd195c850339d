"""Table 2's "EB Train Improv." row, by the rule that reproduces all of the paper's printed values but the
two its transcription flags (`analysis/paper/table2_improvement.csv`, column `note`).

Groups come from the method registry (`analysis.naming`); for the paper's methods they are:

- accuracy (points): max over the FP32 EB variants (re-init, FF) - max over the baselines (LT, SNIP, NS,
  ThiNet). The low-precision variants' accuracies are not counted (with them VGG16/C10 p=0.7 would print
  -0.37, the paper has -0.57).
- FLOPs (x): min baseline FLOPs / min FLOPs over all EB variants.
- energy (x): min baseline energy / the energy of the EB variant trained wholly in 8 bits (LL).
Members missing from the data are left out of the max/min and named in the `basis` text; a side with no
members at all gives a missing value, never 0.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Optional

from analysis.naming import BASELINE, EB, displays, eb_all_low_precision, eb_fp32


@dataclass(frozen=True)
class Improvement:
    acc: float
    energy_x: float
    flops_x: float
    acc_basis: str
    energy_basis: str
    flops_basis: str


def improvement(acc: Mapping[str, float], energy: Mapping[str, float], flops: Mapping[str, float]) -> Improvement:
    """Each mapping: method name (Table 2 row) -> value; missing or NaN entries are skipped."""
    baselines = displays(BASELINE)
    eb_acc, base_acc = _pick(acc, eb_fp32(), max), _pick(acc, baselines, max)
    base_e, ll_e = _pick(energy, baselines, min), _pick(energy, eb_all_low_precision(), min)
    base_f, eb_f = _pick(flops, baselines, min), _pick(flops, displays(EB), min)
    return Improvement(
        acc=_apply(eb_acc, base_acc, lambda a, b: a - b),
        energy_x=_apply(base_e, ll_e, lambda a, b: a / b if b else math.nan),
        flops_x=_apply(base_f, eb_f, lambda a, b: a / b if b else math.nan),
        acc_basis=_basis(eb_acc, " - ", base_acc),
        energy_basis=_basis(base_e, " / ", ll_e),
        flops_basis=_basis(base_f, " / ", eb_f),
    )


def round_half_up(value: float, places: int = 1) -> float:
    """The paper's usual rounding (6.459 -> 6.5); Python's round() would round half to even."""
    scale = 10 ** places
    return math.floor(value * scale + 0.5 + 1e-9) / scale


def truncate(value: float, places: int = 1) -> float:
    """Some printed ratios are cut, not rounded (8.657 -> 8.6)."""
    scale = 10 ** places
    return math.floor(value * scale + 1e-9) / scale


def matches_printed(value: float, printed: float, places: int = 1) -> bool:
    """Whether a recomputed ratio prints as the paper printed it, rounded or truncated."""
    return any(abs(f(value, places) - printed) < 1e-9 for f in (round_half_up, truncate))


Pick = Optional[tuple[str, float]]


def _pick(values: Mapping[str, float], names, best) -> Pick:
    present = [(n, float(values[n])) for n in names if n in values and values[n] is not None
               and not math.isnan(float(values[n]))]
    return best(present, key=lambda item: item[1]) if present else None


def _apply(a: Pick, b: Pick, op) -> float:
    return math.nan if a is None or b is None else op(a[1], b[1])


def _basis(a: Pick, op: str, b: Pick) -> str:
    def name(p: Pick) -> str:
        return "(none)" if p is None else f"{p[0]} {p[1]:.4g}"
    return f"{name(a)}{op}{name(b)}"
