"""The per-phase gap between a run's primary meter and each secondary one (e.g. on-board module rails vs
a wall meter): joules and mean watts per phase from both, their difference and its uncertainty.

Only runs whose record has `secondary_meters` contribute. The primary and secondary figures of a row
cover the same time window, so their difference is what lies between the two scopes (carrier board,
supply losses); it is never folded into either meter's totals.

Where a stored meter agreement (`ebt meters agree`, `analysis.agreement`) exists for the run's board with
the primary meter checked against that secondary meter, the row names it (`agreement`) and gives its
ratio B/A with the ratio's uncertainty beside the ratio this phase measured (`measured_ratio`), so a
phase whose gap departs from the agreed one stands out.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

COLUMNS = ["run_id", "phase", "primary_scope", "secondary", "secondary_scope", "primary_j", "primary_unc_j",
           "secondary_j", "secondary_unc_j", "gap_j", "gap_unc_j", "primary_w", "secondary_w", "gap_w",
           "measured_ratio", "agreement", "agreed_ratio", "agreed_ratio_unc"]


def _agreed(calibrations: list[dict], run: pd.Series, secondary: str | None) -> dict[str, Any]:
    """The stored agreement of this board's primary meter against `secondary`, if any."""
    for cal in calibrations:
        if (cal.get("board") == run.get("board") and cal.get("meter_a") == run.get("meter_spec")
                and cal.get("meter_b") == secondary):
            return {"agreement": cal.get("name"), "agreed_ratio": cal.get("ratio"),
                    "agreed_ratio_unc": cal.get("ratio_uncertainty")}
    return {"agreement": None, "agreed_ratio": None, "agreed_ratio_unc": None}


def gap_table(runs: pd.DataFrame, calibrations: list[dict] | None = None) -> pd.DataFrame:
    """One row per (run, secondary meter, phase), in run then phase order; `calibrations` are the stored
    agreements (`analysis.agreement.load_all`)."""
    rows = []
    with_second = [isinstance(m, list) and bool(m) for m in runs["secondary_meters"]]
    for _, run in runs.loc[with_second].iterrows():
        meters = run["secondary_meters"]
        primary = {p.get("name"): p for p in run["phases"] or []}
        for meter in meters:
            agreed = _agreed(calibrations or [], run, meter.get("spec"))
            for phase in meter.get("phases") or []:
                rows.append(dict(_row(run, primary.get(phase.get("name")) or {}, meter, phase), **agreed))
    return pd.DataFrame(rows, columns=COLUMNS)


def _row(run: pd.Series, primary: dict[str, Any], meter: dict[str, Any], phase: dict[str, Any]) -> dict[str, Any]:
    p_j, s_j = primary.get("energy_j"), phase.get("energy_j")
    p_u, s_u = primary.get("energy_uncertainty_j"), phase.get("energy_uncertainty_j")
    p_w, s_w = primary.get("mean_w"), phase.get("mean_w")
    return {
        "run_id": run["run_id"], "phase": phase.get("name"),
        "primary_scope": primary.get("scope") or run.get("energy_scope"), "secondary": meter.get("spec"),
        "secondary_scope": meter.get("scope"), "primary_j": p_j, "primary_unc_j": p_u, "secondary_j": s_j,
        "secondary_unc_j": s_u, "gap_j": _diff(s_j, p_j),
        # independent meters: their uncertainties add in quadrature
        "gap_unc_j": None if p_u is None or s_u is None else math.hypot(p_u, s_u),
        "primary_w": p_w, "secondary_w": s_w, "gap_w": _diff(s_w, p_w),
        "measured_ratio": s_w / p_w if s_w is not None and p_w else None,
    }


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
