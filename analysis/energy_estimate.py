"""Model-based energy estimates for phases run in emulated 8-bit precision (EB Train LF / LL).

The 8-bit phases are emulated in FP32 (`experiments.low_precision`), so what a meter measures for them is
FP32 energy. The paper's LL energies are likewise not measured but "estimated using real-measured unit
energy ... and computational FLOPs" (Sec 4.3, citing Yang et al. 2019b); it gives no formula. An estimate
is never a measurement: a record keeps each rule's figure in `totals.estimates` (and the default's in
`totals.estimated_energy_j` with its rule text), and every table names the rule beside each estimate.

Each rule bills every phase that ran in emulated low precision by a model of its measured energy, and
every other phase at its measured energy. Two follow from first principles and bound the 8-bit cost:

- `bits` (the default): energy proportional to the bits moved and computed, the data-movement-dominated
  case the paper itself describes (Sec 4.3: data movement is "often dominant"). An 8-bit phase is billed
  its idle energy unscaled (the board draws it whatever the word length) plus 8/32 (`lp_bits`/32) of its
  energy above idle (`net_energy_j`). It needs the idle baseline (`meter_idle_w`): without one there is
  no energy above idle to scale, and the estimate is null rather than a guess.
- `mac`: the multiply-accumulate unit-energy ratio (45 nm, 0.9 V; M. Horowitz, "Computing's energy
  problem", ISSCC 2014, the table Yang et al. reproduce): 8-bit int multiply 0.2 pJ + add 0.03 pJ over
  FP32 multiply 3.7 pJ + add 0.9 pJ, applied to all of a phase's energy: the low end.

A third is shown beside them and is not an estimate of anything independent:

- `paper-fit`: a constant fitted to the paper's own Table 2, the minimax of its 12 LL/LF energy ratios
  (LL and LF run the same 8-bit search and ticket; LL also retrains in 8 bits, LF in FP32), so it
  reproduces the paper's LL column from its LF column by construction, within the fit's residual
  (`fit_residual`, about ±10 %). It says what the paper's numbers imply, not what 8-bit hardware would use.

The paper bills LF's 8-bit search at FP32 (its LF/FF energy ratios are 0.85-1.01), so only LL's estimate
is compared with the paper.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from experiments.phases import is_low_precision as _low

INT8_MAC_PJ = 0.2 + 0.03
FP32_MAC_PJ = 3.7 + 0.9
FP32_BITS = 32
PAPER_FIT_FACTOR = 0.2219  # 2 / (1/min + 1/max) of the paper's 12 LL/LF ratios (tests recompute it)


@dataclass(frozen=True)
class Rule:
    name: str
    text: str
    phase: Callable[[dict], float | None]  # an 8-bit phase's estimated J (None: it cannot be estimated)
    factor: float | None = None  # the constant applied to the whole phase energy, for rules that have one


def _scaled(factor: float) -> Callable[[dict], float | None]:
    return lambda p: None if p.get("energy_j") is None else p["energy_j"] * factor


def bits_of(precision: str | None) -> int:
    """The word length of a low-precision format (`bfp8` -> 8)."""
    found = re.search(r"(\d+)$", str(precision))
    if not found:
        raise ValueError(f"precision {precision!r} names no word length")
    return int(found.group(1))


def _bits_phase(p: dict) -> float | None:
    """Idle energy unscaled, the energy above idle times bits/32; None without an idle baseline."""
    gross, net = p.get("energy_j"), p.get("net_energy_j")
    if gross is None or net is None:
        return None
    return (gross - net) + net * bits_of(p.get("precision")) / FP32_BITS


MAC = Rule("mac", f"estimated (rule mac): 8-bit phases at measured energy x {INT8_MAC_PJ / FP32_MAC_PJ:.3f}, the "
           f"8-bit int / FP32 MAC energy ratio ({INT8_MAC_PJ:.2f} / {FP32_MAC_PJ:.1f} pJ, Horowitz ISSCC 2014); "
           "other phases measured", _scaled(INT8_MAC_PJ / FP32_MAC_PJ), INT8_MAC_PJ / FP32_MAC_PJ)
BITS = Rule("bits", "estimated (rule bits): 8-bit phases at their idle energy plus 8/32 of their measured energy "
            "above idle (energy proportional to bits moved); other phases measured; null without an idle "
            "baseline (meter_idle_w)", _bits_phase)
PAPER_FIT = Rule("paper-fit", f"fitted (rule paper-fit): 8-bit phases at measured energy x {PAPER_FIT_FACTOR:.4f}, "
                 "a constant fitted to the paper's own 12 LL/LF energy ratios (minimax; it reproduces the paper's "
                 "LL column within its fit residual by construction, so it is no independent estimate); other "
                 "phases measured", _scaled(PAPER_FIT_FACTOR), PAPER_FIT_FACTOR)
RULES = {r.name: r for r in (BITS, MAC, PAPER_FIT)}
DEFAULT = BITS


def is_low_precision(phase: dict) -> bool:
    return _low(phase.get("precision"))


def estimate(phases: list[dict], rule: Rule = DEFAULT) -> tuple[float | None, str | None]:
    """(estimated joules, rule text) for a record's phases; (None, None) when no phase ran in low precision
    or a phase lacks what the rule scales (an estimate is scaled from a measurement, never invented)."""
    if not any(is_low_precision(p) for p in phases) or any(p.get("energy_j") is None for p in phases):
        return None, None
    parts = [rule.phase(p) if is_low_precision(p) else p["energy_j"] for p in phases]
    if any(v is None for v in parts):
        return None, None
    return sum(parts), rule.text


def estimates(phases: list[dict]) -> dict[str, float | None]:
    """Every rule's estimate of `phases` by name (the record's `totals.estimates`)."""
    return {name: estimate(phases, rule)[0] for name, rule in RULES.items()}


def phase_ratio(phase: dict, rule: Rule) -> float | None:
    """estimate / measurement of one phase (1 for a full-precision phase): scales its uncertainty."""
    if not is_low_precision(phase):
        return 1.0
    est, gross = rule.phase(phase), phase.get("energy_j")
    return None if est is None else est / gross if gross else 1.0


def fit_residual(ratios: list[float], factor: float = PAPER_FIT_FACTOR) -> tuple[float, float]:
    """(smallest, largest) relative miss of `factor` on cells whose true ratios are `ratios`."""
    misses = [factor / r - 1 for r in ratios]
    return min(misses), max(misses)
