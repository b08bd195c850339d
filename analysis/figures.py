"""The report's figures by name: the paper's Figures 1, 2, 3 and 5 and the suite's own energy views.

Each figure's builder takes the runs DataFrame and returns a `FigureResult`: the matplotlib figure (None
when there is nothing to plot) and exactly the data it plotted, so tests and REPORT.md can check and count
what backs it. Builders live in one module per family (`fig_draw_epoch`: Figs 1, 2, 5; `fig_masks`:
Fig 3; `fig_energy`: the energy views; `fig_power_modes`: energy against time per power mode), which load
matplotlib. This index does not: the report makes its tables without matplotlib while one process, which
`prepare`s once, draws the figures.
"""
from __future__ import annotations

import copy
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd


@dataclass
class FigureResult:
    name: str
    caption: str
    fig: Any  # a matplotlib Figure; None when there is nothing to plot
    data: pd.DataFrame
    n_runs: int
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    drawn: bool = field(init=False)

    def __post_init__(self) -> None:
        self.drawn = self.fig is not None

    def described(self) -> FigureResult:
        """The figure's description without its drawing and arrays: what crosses back from a worker."""
        light = copy.copy(self)
        light.fig, light.arrays = None, {}
        return light


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    builder: str  # "module:function"

    def build(self, runs: pd.DataFrame) -> FigureResult:
        return self.function()(runs)

    def function(self) -> Callable[[pd.DataFrame], FigureResult]:
        module, function = self.builder.split(":")
        return getattr(importlib.import_module(module), function)


ALL_FIGURES = (
    Figure("fig1_retrain_accuracy", "Fig 1: retrain accuracy vs draw epoch",
           "analysis.fig_draw_epoch:fig1_retrain_accuracy"),
    Figure("fig2_low_precision", "Fig 2: low-precision search, accuracy and FLOPs vs draw epoch",
           "analysis.fig_draw_epoch:fig2_low_precision"),
    Figure("fig3_mask_distance", "Fig 3: pairwise mask distance", "analysis.fig_masks:fig3_mask_distance"),
    Figure("fig5_training_flops", "Fig 5: total training FLOPs vs draw epoch",
           "analysis.fig_draw_epoch:fig5_training_flops"),
    Figure("energy_accuracy", "Energy vs accuracy per method (Pareto view)", "analysis.fig_energy:energy_accuracy"),
    Figure("power_trace", "Power trace per phase", "analysis.fig_energy:power_trace"),
    Figure("power_modes", "Energy vs time per power mode", "analysis.fig_power_modes:fig_energy_time"),
)
TITLES = {f.name: f.title for f in ALL_FIGURES}


def prepare() -> None:
    """Load, once, what every process that draws would otherwise load for itself: each builder's module
    (and so matplotlib), the PDF backend with its font subsetter, and the default font. And one BLAS
    thread: Fig 3's mask distances are small matrix products, and a BLAS thread waiting for a core that
    another figure holds stalls each of them by a scheduler slice (a tenth of a second)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    for f in ALL_FIGURES:
        f.function()
    from analysis.plotting import warm

    warm()
