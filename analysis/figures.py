"""The paper's Figures 1, 2, 3 and 5 and the suite's own energy views, from the runs DataFrame.

Each function returns a `FigureResult` holding the matplotlib figure (None when there is nothing to plot)
and exactly the data it plotted, so tests and REPORT.md can check and count what backs each figure. One
module per family: `fig_draw_epoch` (Figs 1, 2, 5), `fig_masks` (Fig 3), `fig_energy` (energy views).
"""
from __future__ import annotations

from analysis.fig_draw_epoch import (
           fig1_retrain_accuracy,
           fig2_low_precision,
           fig5_training_flops,
)
from analysis.fig_energy import energy_accuracy, pareto_front, power_trace
from analysis.fig_masks import fig3_mask_distance
from analysis.plotting import FigureResult
from analysis.power_modes import fig_energy_time

__all__ = [
           "ALL_FIGURES",
           "TITLES",
           "FigureResult",
           "energy_accuracy",
           "fig1_retrain_accuracy",
           "fig2_low_precision",
           "fig3_mask_distance",
           "fig5_training_flops",
           "pareto_front",
           "power_trace",
]

TITLES = {
    "fig1_retrain_accuracy": "Fig 1: retrain accuracy vs draw epoch",
    "fig2_low_precision": "Fig 2: low-precision search, accuracy and FLOPs vs draw epoch",
    "fig3_mask_distance": "Fig 3: pairwise mask distance",
    "fig5_training_flops": "Fig 5: total training FLOPs vs draw epoch",
    "energy_accuracy": "Energy vs accuracy per method (Pareto view)",
    "power_trace": "Power trace per phase",
    "power_modes": "Energy vs time per power mode",
}
ALL_FIGURES = (fig1_retrain_accuracy, fig2_low_precision, fig3_mask_distance, fig5_training_flops,
               energy_accuracy, power_trace, fig_energy_time)
