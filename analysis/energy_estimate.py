"""A model-based energy estimate for phases run in emulated 8-bit precision (EB Train LF / LL).

The 8-bit phases are emulated in FP32 (`experiments.low_precision`), so what a meter measures for them is
FP32 energy. The paper's LL energies are likewise not measured but "estimated using real-measured unit
energy" (Sec 4.3, citing Yang et al. 2019b, WAGEUBN, arXiv:1909.02384, whose operation energies are
Horowitz's). This module makes the same kind of estimate, and it is only ever reported as
`totals.estimated_energy_j` with its rule in `totals.estimate_rule`; `totals.energy_j` stays the measurement.

Rule: every phase whose record says it ran in 8-bit block floating point is billed at its measured energy
times the ratio of one 8-bit integer multiply-accumulate to one FP32 multiply-accumulate; every other
phase at its measured energy. Unit energies (45 nm, 0.9 V; M. Horowitz, "Computing's energy problem",
ISSCC 2014, the table WAGEUBN reproduces): 8-bit int multiply 0.2 pJ + add 0.03 pJ = 0.23 pJ; FP32 multiply
3.7 pJ + add 0.9 pJ = 4.6 pJ; ratio 0.05.

Scope: the ratio treats all of a phase's energy as multiply-accumulate energy. Memory traffic (8/32 of the
bytes at 8 bits) and the board's static power shrink less, so this is a lower bound on the energy of real
8-bit hardware. The paper's Table 2 LL energies are about 0.22 of LF's (e.g. VGG16 CIFAR-10 p=0.5:
43.1 vs 199.4 kJ), so its estimate credited less than the MAC ratio; compare with that in mind.
"""
from __future__ import annotations

from typing import Optional

INT8_MAC_PJ = 0.2 + 0.03
FP32_MAC_PJ = 3.7 + 0.9
RATIO = INT8_MAC_PJ / FP32_MAC_PJ

RULE = ("estimated: phases in emulated 8-bit block floating point billed at measured energy x %.3f "
        "(8-bit int MAC %.2f pJ / FP32 MAC %.1f pJ, Horowitz ISSCC 2014 as used by Yang et al. 2019b); "
        "other phases at measured energy" % (RATIO, INT8_MAC_PJ, FP32_MAC_PJ))


def is_low_precision(phase: dict) -> bool:
    return str(phase.get("precision") or "").startswith("bfp")


def estimate(phases: list[dict]) -> tuple[Optional[float], Optional[str]]:
    """(estimated joules, rule) for a record's phases; (None, None) when no phase ran in low precision
    or any phase lacks a measured energy (an estimate is scaled from a measurement, never invented)."""
    if not any(is_low_precision(p) for p in phases):
        return None, None
    if any(p.get("energy_j") is None for p in phases):
        return None, None
    total = sum(p["energy_j"] * (RATIO if is_low_precision(p) else 1.0) for p in phases)
    return total, RULE
