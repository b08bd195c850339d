"""What every figure shares: the style, one colour per pruning ratio and per method, the panel grid,
the figure-wide legend, and `FigureResult` (the figure and exactly the data it plotted).

Figures are built on `matplotlib.figure.Figure` directly (no pyplot state), Agg backend.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.naming import method_order

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 7,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False,
}
DPI = 150
_TAB10 = matplotlib.colormaps["tab10"].colors
MARKERS = "os^vDPX*hp"


def method_style(method: str) -> tuple:
    """(colour, marker) of a method, by its place in the registry (so a new method gets its own)."""
    order = method_order()
    i = order.index(method) if method in order else len(order)
    return _TAB10[i % 10], MARKERS[i % len(MARKERS)]


def ratio_color(p: float):
    """One colour per pruning ratio across every figure (p = 0.1 ... 0.9)."""
    return _TAB10[round(float(p) * 10) % 10]


@dataclass
class FigureResult:
    name: str
    caption: str
    fig: Figure | None
    data: pd.DataFrame
    n_runs: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def figure(n_panels: int, ncols: int = 2, width: float = 3.6, height: float = 2.8, nrows_per: int = 1):
    ncols = max(1, min(n_panels, ncols))
    nrows = math.ceil(n_panels / ncols) * nrows_per
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels * nrows_per:]:
        ax.set_visible(False)
    return fig, axes


def settings(df: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(set(zip(df["model"], df["dataset_name"])))

def legend(fig, ratios: Sequence[float], extra: Sequence[tuple[str, dict]]) -> None:
    """One legend for the whole figure: per-axes legends cost most of the render time and hide data."""
    handles = [Line2D([], [], color=ratio_color(p), marker="o", ms=3.5, label=f"p = {p:g}") for p in sorted(ratios)]
    handles += [Line2D([], [], label=label, **style) for label, style in extra]
    figure_legend(fig, handles)


def figure_legend(fig, handles: list[Line2D]) -> None:
    # As many columns as the figure's width holds, so a one-panel figure does not clip its legend.
    per_row = max(1, int(fig.get_figwidth() / 1.9))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), per_row), frameon=False)

