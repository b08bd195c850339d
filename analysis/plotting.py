"""What every figure shares: the style, one colour per pruning ratio and per method, the panel grid,
the figure-wide legend.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot state), Agg backend.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import pandas as pd
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import ScaledTranslation

from analysis.naming import method_order

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 7,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
    # The grid marks where each tick is, so no tick marks: a tick is a third fewer artists to draw.
    "xtick.bottom": False, "ytick.left": False,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.titley": 1.0,  # a fixed title height: drawing need not measure the tick labels to place it
}
DPI = 150
MARGIN = {"left": 0.62, "right": 0.15, "bottom": 0.5, "top": 0.3}  # inches around each panel (`figure`)
LABEL_AT = {"x": 0.3, "y": 0.46}  # inches from the panel to its x (below) and y (left) axis label
LEGEND_ROW = 0.22  # inches per row of the figure-wide legend
_TAB10 = matplotlib.colormaps["tab10"].colors
MARKERS = "os^vDPX*hp"
TICKS = 5  # at most this many intervals per axis: every tick is laid out and drawn once per format


def method_style(method: str) -> tuple:
    """(colour, marker) of a method, by its place in the registry (so a new method gets its own)."""
    order = method_order()
    i = order.index(method) if method in order else len(order)
    return _TAB10[i % 10], MARKERS[i % len(MARKERS)]


def ratio_color(p: float):
    """One colour per pruning ratio across every figure (p = 0.1 ... 0.9)."""
    return _TAB10[round(float(p) * 10) % 10]


def figure(n_panels: int, ncols: int = 2, width: float = 3.6, height: float = 2.8, nrows_per: int = 1,
           title_lines: int = 1, right_extra: float = 0.0):
    """A grid of `n_panels` panels, each `width` x `height` inches with its margins (`MARGIN`, in inches:
    tick labels and the axis label left and below, `title_lines` of title above), and `right_extra` inches
    free on the right (a colorbar's). The margins are fixed, not measured: a layout engine would lay out
    every tick label once more on each save to find them."""
    ncols = max(1, min(n_panels, ncols))
    nrows = math.ceil(n_panels / ncols) * nrows_per
    left, right, bottom, top = MARGIN["left"], MARGIN["right"], MARGIN["bottom"], MARGIN["top"] * title_lines
    fig_w, fig_h = width * ncols + right_extra, height * nrows
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
        fig.subplots_adjust(left=left / fig_w, right=1 - (right + right_extra) / fig_w, bottom=bottom / fig_h,
                            top=1 - top / fig_h,
                            wspace=(left + right) / (width - left - right),
                            hspace=(top + bottom) / (height - top - bottom))
        axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(ticks())
        ax.yaxis.set_major_locator(ticks())
        # Fixed, inside the margins: placing them by the tick labels would lay every tick label out again.
        ax.xaxis.set_label_coords(0.5, 0, transform=ax.transAxes + ScaledTranslation(0, -LABEL_AT["x"], fig.dpi_scale_trans))
        ax.yaxis.set_label_coords(0, 0.5, transform=ax.transAxes + ScaledTranslation(-LABEL_AT["y"], 0, fig.dpi_scale_trans))
    for ax in axes.flat[n_panels * nrows_per:]:
        ax.set_visible(False)
    return fig, axes


def ticks(integer: bool = False) -> MaxNLocator:
    """The tick placer of every linear axis: at most `TICKS` intervals, at round values."""
    return MaxNLocator(TICKS, steps=[1, 2, 2.5, 5, 10], integer=integer)


class ErrorBars:
    """The error bars of one panel, without caps, drawn as one collection: `Axes.errorbar` would add a line
    and a collection (and two cap lines) per series, each drawn and laid out on its own."""

    def __init__(self) -> None:
        self.segments: list = []
        self.colors: list = []

    def add(self, x, y, color, ylo=None, yhi=None, xlo=None, xhi=None) -> None:
        """Bars from (x, ylo) to (x, yhi) and from (xlo, y) to (xhi, y), per point (sequences)."""
        for i, (px, py) in enumerate(zip(x, y)):
            if ylo is not None:
                self.segments.append(((px, ylo[i]), (px, yhi[i])))
                self.colors.append(color)
            if xlo is not None:
                self.segments.append(((xlo[i], py), (xhi[i], py)))
                self.colors.append(color)

    def draw(self, ax, lw: float = 1.0) -> None:
        if self.segments:
            ax.add_collection(LineCollection(self.segments, colors=self.colors, linewidths=lw), autolim=True)


def warm() -> None:
    """Load the PDF backend (with its font subsetter) and the default font, before forking the processes
    that draw, so that each need not."""
    import matplotlib.backends.backend_pdf  # noqa: F401
    from matplotlib.font_manager import FontProperties, findfont, get_font

    get_font(findfont(FontProperties()))


def settings(df: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(set(zip(df["model"], df["dataset_name"])))

def legend(fig, ratios: Sequence[float], extra: Sequence[tuple[str, dict]]) -> None:
    """One legend for the whole figure: per-axes legends cost most of the render time and hide data."""
    handles = [Line2D([], [], color=ratio_color(p), marker="o", ms=3.5, label=f"p = {p:g}") for p in sorted(ratios)]
    handles += [Line2D([], [], label=label, **style) for label, style in extra]
    figure_legend(fig, handles)


def figure_legend(fig, handles: list[Line2D]) -> None:
    """The legend below the panels: the figure grows by its rows, the panels keep their size."""
    # As many columns as the figure's width holds, so a one-panel figure does not clip its legend.
    per_row = max(1, int(fig.get_figwidth() / 1.9))
    ncol = min(len(handles), per_row)
    grow = LEGEND_ROW * math.ceil(len(handles) / ncol) + 0.15
    width, height = fig.get_size_inches()
    bottom, top = fig.subplotpars.bottom * height + grow, fig.subplotpars.top * height + grow
    fig.set_size_inches(width, height + grow)
    fig.subplots_adjust(bottom=bottom / (height + grow), top=top / (height + grow))
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=ncol, frameon=False)

