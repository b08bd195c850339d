"""Figs 1, 2 and 5: retrain accuracy and total training FLOPs against the epoch the ticket is drawn at.

Accuracy is the official metric (the best epoch's top-1). Every point is one cell (`analysis.cells`):
the mean over its seeds, with min/max bars. Tickets drawn at a fixed epoch (spec `eb_draw_epoch`) make
the curves, one curve per series (cells identical but for the draw epoch); detector draws are stars at
their cell's mean ticket epoch. The dense line of a curve is the dense cell of the same settings.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis import cells
from analysis.naming import DEFAULT_EB, LOW_PRECISION_SEARCH_EB, REFERENCE, displays
from analysis.figures import FigureResult
from analysis.plotting import ErrorBars, figure, legend, ratio_color, settings, ticks

ACC = "best_top1"
SERIES_FREE = ("eb_draw_epoch",)  # the points of one curve differ only in this
DENSE_FREE = ("method", "prune_ratio", "eb_draw_epoch")  # a curve and its dense line differ only in these
POINT_COLUMNS = ["model", "dataset_name", "prune_ratio", "drawn_by", "series", "series_label", "cell",
                 "draw_epoch", "mean", "min", "max", "n", "run_ids"]
LINESTYLES = ("-", "--", ":", "-.")
ERROR_BARS = "error bars = min/max over the seeds of one cell (runs identical but for the seed)"


def _series(df: pd.DataFrame, drop: Sequence[str]) -> pd.Series:
    return df["cell_spec"].map(lambda spec: cells.digest(spec, drop))


def _series_labels(df: pd.DataFrame) -> dict[str, str]:
    """series -> how it differs from the other series of its panel ('' when alone)."""
    specs = {s: {k: v for k, v in spec.items() if k not in SERIES_FREE}
             for s, spec in zip(df["series"], df["cell_spec"])}
    groups = {s: f"{m}|{d}" for s, m, d in zip(df["series"], df["model"], df["dataset_name"])}
    return cells.labels(specs, groups)


def _by_cell(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """mean/min/max/n of `col` per cell, at its (mean) draw epoch; detector draws kept apart."""
    df = df[df[col].notna()]
    if df.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    drawn_by = np.where(df["eb_draw_epoch"].isna(), "detector", "fixed")
    drawn_by = np.where(df["drawn_at_best"].fillna(False).astype(bool), "best", drawn_by)
    df = df.assign(drawn_by=drawn_by, series=_series(df, SERIES_FREE))
    labels = _series_labels(df)
    keys = ["model", "dataset_name", "prune_ratio", "drawn_by", "series", "cell"]
    out = df.groupby(keys).agg(draw_epoch=("draw_epoch", "mean"), mean=(col, "mean"), min=(col, "min"),
                               max=(col, "max"), n=(col, "count"),
                               run_ids=("run_id", lambda s: " ".join(sorted(s)))).reset_index()
    return out.assign(series_label=out["series"].map(labels))[POINT_COLUMNS]


def _dense(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """Per curve context, the dense cell of the same settings (mean over its seeds)."""
    cols = ["model", "dataset_name", "context", "cell", "mean", "n", "run_ids"]
    d = runs[runs["method_name"].isin(displays(REFERENCE)) & runs[ACC].notna()]
    if d.empty or curves.empty:
        return pd.DataFrame(columns=cols)
    d = d.assign(context=_series(d, DENSE_FREE))
    d = d[d["context"].isin(set(_series(curves, DENSE_FREE)))]
    return d.groupby(["model", "dataset_name", "context", "cell"]).agg(
        mean=(ACC, "mean"), n=(ACC, "count"), run_ids=("run_id", lambda s: " ".join(sorted(s)))).reset_index()[cols]


def _plot_curves(ax, pts: pd.DataFrame, ylabel: str, styles: dict[str, str]) -> None:
    bars = ErrorBars()
    for (p, series, drawn_by), d in pts.groupby(["prune_ratio", "series", "drawn_by"]):
        ls = styles[d["series_label"].iloc[0]]
        style = ({"marker": "o", "ms": 3.5, "lw": 1.2, "ls": ls} if drawn_by == "fixed"
                 else {"marker": "*", "ms": 11, "ls": "none"} if drawn_by == "best"
                 else {"marker": "*", "ms": 9, "ls": "none", "mfc": "none"})
        d = d.sort_values("draw_epoch")
        ax.plot(d["draw_epoch"], d["mean"], color=ratio_color(p), **style)
        bars.add(list(d["draw_epoch"]), list(d["mean"]), ratio_color(p), ylo=list(d["min"]), yhi=list(d["max"]))
    bars.draw(ax)
    ax.set_xlabel("epoch the ticket is drawn at")
    ax.xaxis.set_major_locator(ticks(integer=True))
    ax.set_ylabel(ylabel)


def _draw_epochfigure(runs: pd.DataFrame, method: str, name: str, caption: str,
                      panels: Sequence[tuple[str, str]], dense_line: bool) -> FigureResult:
    """Curves per p and series over draw epochs, one column per setting and one row per (column, label)."""
    sel = runs[runs["method_name"].eq(method) & runs["draw_epoch"].notna()]
    tables = {col: _by_cell(sel, col).assign(metric=col) for col, _ in panels}
    data = pd.concat(tables.values(), ignore_index=True)
    panels_of = settings(data) if len(data) else []
    if not panels_of:
        return FigureResult(name, caption, None, data, 0)
    dense = _dense(runs, sel) if dense_line else pd.DataFrame(columns=["model", "dataset_name", "mean", "n"])
    styles = _linestyles(tables[panels[0][0]])
    if dense_line:
        dense["series_label"] = dense["context"].map(_context_labels(sel, tables[panels[0][0]]))
        data = pd.concat([data, dense.assign(metric=ACC, drawn_by="dense", prune_ratio=0.0)], ignore_index=True)
    fig, axes = figure(len(panels_of), ncols=len(panels_of) if len(panels) > 1 else 2, nrows_per=len(panels))
    ncols = axes.shape[1]
    for i, (model, ds) in enumerate(panels_of):
        for j, (col, label) in enumerate(panels):
            ax = axes[(i // ncols) * len(panels) + j, i % ncols]
            t = tables[col]
            _plot_curves(ax, t[(t["model"] == model) & (t["dataset_name"] == ds)], label, styles)
            if col == ACC and dense_line:
                mine = dense[(dense["model"] == model) & (dense["dataset_name"] == ds)]
                for value, series in zip(mine["mean"], mine["series_label"]):
                    # grey, in the line style of the curves it belongs to
                    ax.axhline(value, color="0.55", ls=styles.get(series, "--"), lw=1)
            # The whole epoch budget on x, as in the paper: where in training a ticket was drawn is the point.
            budget = sel.loc[(sel["model"] == model) & (sel["dataset_name"] == ds), "epochs"].max()
            if pd.notna(budget):
                ax.set_xlim(0, budget * 1.02)
            ax.set_title(f"{model}, {ds}")
    legend(fig, data.loc[data["drawn_by"].ne("dense"), "prune_ratio"].unique(), _extra(data, dense_line, dense))
    n_runs = int(sel[sel[panels[0][0]].notna()].shape[0]) + (int(dense["n"].sum()) if dense_line else 0)
    return FigureResult(name, caption + _series_note(data), fig, data, n_runs)


def _context_labels(sel: pd.DataFrame, pts: pd.DataFrame) -> dict[str, str]:
    """dense context -> the series label of the curves of that context."""
    spec_of = sel.groupby("cell")["cell_spec"].first()
    return {cells.digest(spec_of[c], DENSE_FREE): label for c, label in zip(pts["cell"], pts["series_label"])}


def _linestyles(pts: pd.DataFrame) -> dict[str, str]:
    """One line style per series label (the curves of one setting share a style, their p a colour)."""
    found = sorted({str(x) for x in pts["series_label"].fillna("")})
    return {label: LINESTYLES[i % len(LINESTYLES)] for i, label in enumerate(found)}


def _extra(data: pd.DataFrame, dense_line: bool, dense: pd.DataFrame) -> list[tuple[str, dict]]:
    extra = []
    fixed = data[data["drawn_by"].isin(["fixed", "detector", "best"])]
    styles = _linestyles(fixed)
    if len(styles) > 1:
        extra += [(label or "(no difference)", {"color": "0.3", "ls": ls}) for label, ls in styles.items()]
    if data["drawn_by"].eq("best").any():
        extra.append(("drawn at the best search top-1", {"color": "0.3", "marker": "*", "ms": 11, "ls": "none"}))
    if data["drawn_by"].eq("detector").any():
        extra.append(("drawn by the EB detector", {"color": "0.3", "marker": "*", "ms": 9, "ls": "none",
                                                   "mfc": "none"}))
    if dense_line and len(dense):
        extra.append(("dense (grey, its curves' line style)" if len(_linestyles(data[data["drawn_by"].ne("dense")])) > 1
                      else "dense", {"color": "0.55", "ls": "--", "lw": 1}))
    return extra


def _series_note(data: pd.DataFrame) -> str:
    labels = sorted({str(x) for x in data.get("series_label", pd.Series(dtype=object)).dropna() if x})
    return (" Curves of different settings are drawn apart, never pooled: " + "; ".join(labels) + ".") if labels else ""


def fig1_retrain_accuracy(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, DEFAULT_EB, "fig1_retrain_accuracy",
        "Fig 1: EB Train (FF) retrain top-1 (best epoch) vs the epoch the ticket is drawn at, per p; "
        f"{ERROR_BARS}; dashed = dense (the dense cell of the same settings); filled stars = tickets drawn "
        "at the search epoch of best top-1 (`eb_draw_epoch: best`, the paper's stars), hollow stars = tickets "
        "drawn by the EB detector, each at its cell's mean ticket epoch.",
        [(ACC, "retrain top-1 (%)")], dense_line=True)


def fig2_low_precision(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, LOW_PRECISION_SEARCH_EB, "fig2_low_precision",
        "Fig 2: EB Train (LF: 8-bit search, FP32 retrain) retrain top-1 (best epoch; top) and total training "
        f"PFLOPs (bottom) vs draw epoch, per p; {ERROR_BARS}; dashed = dense (same settings).",
        [(ACC, "retrain top-1 (%)"), ("flops_p", "training PFLOPs")], dense_line=True)


def fig5_training_flops(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, DEFAULT_EB, "fig5_training_flops",
        f"Fig 5: EB Train (FF) total training PFLOPs (search + retrain) vs draw epoch, per p; {ERROR_BARS}.",
        [("flops_p", "training PFLOPs")], dense_line=False)
