"""Figs 1, 2 and 5: retrain accuracy and total training FLOPs against the epoch the ticket is drawn at.

Accuracy is the official metric (the best epoch's top-1). Points are means over seeds with min/max bars;
tickets drawn at a fixed epoch (spec `eb_draw_epoch`) make the curves, detector draws are stars.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from analysis.naming import DEFAULT_EB, LOW_PRECISION_SEARCH_EB, REFERENCE, displays
from analysis.plotting import FigureResult, figure, legend, ratio_color, settings

ACC = "best_top1"


def _by_draw_epoch(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """mean/min/max/n of `col` over seeds per (setting, p, draw epoch); detector draws kept apart."""
    df = df[df[col].notna()]
    df = df.assign(drawn_by=np.where(df["eb_draw_epoch"].isna(), "detector", "fixed"))
    if df.empty:
        return pd.DataFrame(columns=["model", "dataset_name", "prune_ratio", "drawn_by", "draw_epoch",
                                     "mean", "min", "max", "n"])
    return (df.groupby(["model", "dataset_name", "prune_ratio", "drawn_by", "draw_epoch"])[col]
            .agg(["mean", "min", "max", "count"]).rename(columns={"count": "n"}).reset_index())


def _dense(runs: pd.DataFrame) -> pd.DataFrame:
    d = runs[runs["method_name"].isin(displays(REFERENCE)) & runs[ACC].notna()]
    if d.empty:
        return pd.DataFrame(columns=["model", "dataset_name", "mean", "n"])
    return d.groupby(["model", "dataset_name"])[ACC].agg(["mean", "count"]).rename(
        columns={"count": "n"}).reset_index()


def _plot_curves(ax, pts: pd.DataFrame, ylabel: str) -> None:
    for p, g in pts.groupby("prune_ratio"):
        color = ratio_color(p)
        for drawn_by, style in (("fixed", {"marker": "o", "ms": 3.5, "lw": 1.2}), ("detector", {"marker": "*", "ms": 9, "ls": "none"})):
            d = g[g["drawn_by"].eq(drawn_by)].sort_values("draw_epoch")
            if len(d):
                ax.errorbar(d["draw_epoch"], d["mean"], yerr=[d["mean"] - d["min"], d["max"] - d["mean"]],
                            color=color, capsize=2.5, **style)
    ax.set_xlabel("epoch the ticket is drawn at")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)



def _draw_epochfigure(runs: pd.DataFrame, method: str, name: str, caption: str,
                       panels: Sequence[tuple[str, str]], dense_line: bool) -> FigureResult:
    """Curves per p over draw epochs, one column per setting and one row per (column, label) panel."""
    sel = runs[runs["method_name"].eq(method) & runs["draw_epoch"].notna()]
    tables = {col: _by_draw_epoch(sel, col).assign(metric=col) for col, _ in panels}
    data = pd.concat(tables.values(), ignore_index=True)
    dense = _dense(runs) if dense_line else pd.DataFrame(columns=["model", "dataset_name", "mean", "n"])
    panels_of = settings(data) if len(data) else []
    if not panels_of:
        return FigureResult(name, caption, None, data, 0)
    if dense_line:
        dense = dense.loc[np.array([s in panels_of for s in zip(dense["model"], dense["dataset_name"])], dtype=bool)]
        data = pd.concat([data, dense.assign(metric=ACC, drawn_by="dense", prune_ratio=0.0)], ignore_index=True)
    fig, axes = figure(len(panels_of), ncols=len(panels_of) if len(panels) > 1 else 2, nrows_per=len(panels))
    ncols = axes.shape[1]
    for i, (model, ds) in enumerate(panels_of):
        for j, (col, label) in enumerate(panels):
            ax = axes[(i // ncols) * len(panels) + j, i % ncols]
            t = tables[col]
            _plot_curves(ax, t[(t["model"] == model) & (t["dataset_name"] == ds)], label)
            if col == ACC and dense_line:
                for value in dense.loc[(dense["model"] == model) & (dense["dataset_name"] == ds), "mean"]:
                    ax.axhline(value, color="0.3", ls="--", lw=1)
            # The whole epoch budget on x, as in the paper: where in training a ticket was drawn is the point.
            budget = sel.loc[(sel["model"] == model) & (sel["dataset_name"] == ds), "epochs"].max()
            if pd.notna(budget):
                ax.set_xlim(0, budget * 1.02)
            ax.set_title(f"{model}, {ds}")
    extra = []
    if data["drawn_by"].eq("detector").any():
        extra.append(("drawn by the EB detector", {"color": "0.3", "marker": "*", "ms": 9, "ls": "none"}))
    if dense_line and len(dense):
        extra.append(("dense", {"color": "0.3", "ls": "--", "lw": 1}))
    legend(fig, data.loc[data["drawn_by"].ne("dense"), "prune_ratio"].unique(), extra)
    n_runs = int(sel[sel[panels[0][0]].notna()].shape[0]) + (int(dense["n"].sum()) if dense_line else 0)
    return FigureResult(name, caption, fig, data, n_runs)


def fig1_retrain_accuracy(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, DEFAULT_EB, "fig1_retrain_accuracy",
        "Fig 1: EB Train (FF) retrain top-1 vs the epoch the ticket is drawn at, per p; error bars = min/max "
        "over seeds; dashed = dense; stars = tickets drawn by the EB detector (the paper's star marks the "
        "best-search-accuracy epoch instead).",
        [(ACC, "retrain top-1, best epoch (%)")], dense_line=True)


def fig2_low_precision(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, LOW_PRECISION_SEARCH_EB, "fig2_low_precision",
        "Fig 2: EB Train (LF: 8-bit search, FP32 retrain) retrain top-1 (top) and total training PFLOPs "
        "(bottom) vs draw epoch, per p; dashed = dense.",
        [(ACC, "retrain top-1, best epoch (%)"), ("flops_p", "total training PFLOPs")], dense_line=True)


def fig5_training_flops(runs: pd.DataFrame) -> FigureResult:
    return _draw_epochfigure(
        runs, DEFAULT_EB, "fig5_training_flops",
        "Fig 5: EB Train (FF) total training PFLOPs (search + retrain) vs draw epoch, per p.",
        [("flops_p", "total training PFLOPs")], dense_line=False)
