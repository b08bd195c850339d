"""Energy, time and accuracy per power mode, and each method's energy-optimal mode (Zeus-style choices).

A run's mode is the one the board held (`analysis.records.held_mode`: `conditions.power_mode.during`, one
entry, else the mode its `device` block found, else the spec's request); a run whose mode changed during
it is left out. Runs are grouped into cells (`analysis.cells`: same resolved spec except seed, run id and
where the meters hang, on the same board) and a cell's siblings across modes form a family (the cell
without its power mode). Per cell: kJ mean ± u (u = sqrt(s² + ū²), the report's convention), hours, best
top-1, and the runs behind it.

Choices per family, over the modes whose cell has a measured energy:
- `least_energy`: the mode with the least kJ;
- `least_time`: the mode with the fewest hours;
- `within_slowdown`: the least kJ among modes at most `max_slowdown` times the fastest mode's hours
  (Zeus's MaxSlowdownConstraint; `ebt report --max-slowdown`).
`ranking` orders each model/dataset's families by kJ in every mode where all of them were measured, and
says whether the order is the same in all those modes.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis import cells, markdown
from analysis.records import MODE_CHANGED, MODE_KEY

DEFAULT_MAX_SLOWDOWN = 1.2


def family_of(spec: dict[str, Any]) -> str:
    """The cell (its `cell_spec`) without its power mode: the same experiment in every mode."""
    return cells.digest(spec, drop=[MODE_KEY])


def _label(r: Any) -> str:
    ratio = r.prune_ratio if r.prune_ratio and not np.isnan(r.prune_ratio) else None
    return f"{r.method_name}" + (f" p={ratio:g}" if ratio else "")


def mode_runs(used: pd.DataFrame) -> pd.DataFrame:
    """One row per used run with a known mode: its identity, mode, cell and family, kJ, hours, top-1."""
    known = used[used[MODE_KEY].notna() & used[MODE_KEY].ne(MODE_CHANGED)]
    rows = [{"run_id": r.run_id, "model": r.model, "dataset_name": r.dataset_name, "method": r.method,
             "label": _label(r), "prune_ratio": r.prune_ratio, "mode": getattr(r, MODE_KEY),
             "family": family_of(r.cell_spec), "cell": r.cell, "energy_kj": r.energy_kj,
             "energy_unc_kj": r.energy_unc_kj, "hours": r.seconds / 3600.0, "best_top1": r.best_top1}
            for r in known.itertuples()]
    return pd.DataFrame(rows, columns=["run_id", "model", "dataset_name", "method", "label", "prune_ratio",
                                       "mode", "family", "cell", "energy_kj", "energy_unc_kj", "hours",
                                       "best_top1"])


def mode_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (a family in one mode): n, kJ mean and u, hours, best top-1, run_ids."""
    out = []
    for (family, mode), g in runs.groupby(["family", "mode"], sort=False):
        kj = g["energy_kj"].dropna()
        unc = g.loc[kj.index, "energy_unc_kj"]
        spread = float(kj.std()) if len(kj) > 1 else 0.0
        own = float(unc.mean()) if len(kj) and unc.notna().all() else 0.0
        first = g.iloc[0]
        out.append({"model": first.model, "dataset_name": first.dataset_name, "method": first.method,
                    "label": first.label, "prune_ratio": first.prune_ratio, "mode": mode, "n": len(g),
                    "energy_kj": kj.mean() if len(kj) else np.nan,
                    "energy_u_kj": float(np.hypot(spread, own)) if len(kj) else np.nan,
                    "hours": g["hours"].mean(), "best_top1": g["best_top1"].mean(),
                    "run_ids": ", ".join(sorted(g["run_id"])), "family": family})
    cols = ["model", "dataset_name", "method", "label", "prune_ratio", "mode", "n", "energy_kj", "energy_u_kj",
            "hours", "best_top1", "run_ids", "family"]
    return pd.DataFrame(out, columns=cols).sort_values(["model", "dataset_name", "label", "mode"],
                                                        ignore_index=True)


def _pick(g: pd.DataFrame, col: str) -> pd.Series | None:
    return g.loc[g[col].idxmin()] if g[col].notna().any() else None


def optimal_modes(table: pd.DataFrame, max_slowdown: float = DEFAULT_MAX_SLOWDOWN) -> pd.DataFrame:
    """Per family: the least-energy mode, the least-time mode, and the least-energy mode within
    `max_slowdown` of the fastest (energy choices among measured cells only)."""
    rows = []
    for family, g in table.groupby("family", sort=False):
        measured = g[g["energy_kj"].notna()]
        energy, fast = _pick(measured, "energy_kj"), _pick(g, "hours")
        allowed = measured[measured["hours"] <= max_slowdown * fast["hours"]] if fast is not None else measured
        bounded = _pick(allowed, "energy_kj")
        first = g.iloc[0]
        rows.append({"model": first.model, "dataset_name": first.dataset_name, "label": first.label,
                     "modes": len(g), "least_energy": None if energy is None else energy["mode"],
                     "least_energy_kj": None if energy is None else energy["energy_kj"],
                     "least_time": None if fast is None else fast["mode"],
                     "least_time_hours": None if fast is None else fast["hours"],
                     "within_slowdown": None if bounded is None else bounded["mode"],
                     "within_slowdown_kj": None if bounded is None else bounded["energy_kj"],
                     "max_slowdown": max_slowdown, "run_ids": ", ".join(g["run_ids"]), "family": family})
    return pd.DataFrame(rows, columns=["model", "dataset_name", "label", "modes", "least_energy", "least_energy_kj",
                                       "least_time", "least_time_hours", "within_slowdown", "within_slowdown_kj",
                                       "max_slowdown", "run_ids", "family"])


def ranking(table: pd.DataFrame) -> pd.DataFrame:
    """Per model, dataset and mode: the families (labels) in order of kJ, in the modes where every family of
    that setting was measured; `holds` says whether the order is the same in each of them (null with fewer
    than two such modes or families)."""
    rows = []
    for (model, data), g in table[table["energy_kj"].notna()].groupby(["model", "dataset_name"], sort=True):
        families = g["family"].nunique()
        modes = sorted(m for m in g["mode"].unique() if g[g["mode"] == m]["family"].nunique() == families)
        orders = {m: " < ".join(g[g["mode"] == m].sort_values("energy_kj")["label"]) for m in modes}
        holds = len(set(orders.values())) == 1 if len(modes) > 1 and families > 1 else None
        rows += [{"model": model, "dataset_name": data, "mode": m, "order_by_kj": o, "holds": holds,
                  "families": families} for m, o in orders.items()]
    return pd.DataFrame(rows, columns=["model", "dataset_name", "mode", "order_by_kj", "holds", "families"])


def markdown_mode_table(t: pd.DataFrame) -> str:
    rows = [[r.model, r.dataset_name, r.label, r.mode, str(r.n), _pm(r.energy_kj, r.energy_u_kj),
             markdown.value(r.hours, 3), markdown.value(r.best_top1, 2), r.run_ids] for r in t.itertuples()]
    return markdown.render(["Model", "Dataset", "Method", "Mode", "n", "kJ ± u", "hours", "top-1 best",
                            "run_ids"], rows)


def markdown_optimal(o: pd.DataFrame) -> str:
    rows = [[r.model, r.dataset_name, r.label, str(r.modes), _mode(r.least_energy, r.least_energy_kj, "kJ"),
             _mode(r.least_time, r.least_time_hours, "h"), _mode(r.within_slowdown, r.within_slowdown_kj, "kJ"),
             r.run_ids] for r in o.itertuples()]
    slow = f"{o['max_slowdown'].iloc[0]:g}" if len(o) else f"{DEFAULT_MAX_SLOWDOWN:g}"
    return markdown.render(["Model", "Dataset", "Method", "modes", "least energy", "least time",
                            f"least energy within {slow}x the fastest", "run_ids"], rows)


def markdown_ranking(r: pd.DataFrame) -> str:
    rows = [[x.model, x.dataset_name, x.mode, x.order_by_kj, {True: "yes", False: "**no**"}.get(x.holds, "—")]
            for x in r.itertuples()]
    return markdown.render(["Model", "Dataset", "Mode", "methods by kJ (least first)", "same order in every mode"],
                           rows)


def _pm(mean: Any, unc: Any) -> str:
    text = markdown.value(mean, 2)
    return text if text == markdown.MISSING or markdown.value(unc) == markdown.MISSING else \
        f"{text} ± {markdown.value(unc, 2)}"


def _mode(mode: Any, amount: Any, unit: str) -> str:
    return markdown.MISSING if pd.isna(mode) else f"{mode} ({markdown.value(amount, 3)} {unit})"
