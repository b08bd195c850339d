"""Energy against training time per power mode: a line per method and ratio, a point per mode."""
from __future__ import annotations

import pandas as pd

from analysis.figures import FigureResult
from analysis.plotting import ErrorBars, figure, figure_legend, method_style
from analysis.power_modes import mode_runs, mode_table


def fig_energy_time(used: pd.DataFrame) -> FigureResult:
    """kJ against hours, one panel per model/dataset, one line per method (and ratio), a point per mode."""
    table = mode_table(mode_runs(used))
    data = table[table["energy_kj"].notna()]
    name, caption = "power_modes", ("Energy against training time per power mode: a line per method and ratio, "
                                    "a point per mode (labelled); error bars are the cells' u.")
    if data.empty or data["mode"].nunique() < 2:
        return FigureResult(name, caption, None, data, 0)
    panels = sorted(set(zip(data["model"], data["dataset_name"])))
    fig, axes = figure(len(panels))
    handles = {}
    for ax, (model, dset) in zip(axes.flat, panels):
        part = data[(data["model"] == model) & (data["dataset_name"] == dset)]
        bars = ErrorBars()
        for (label, method), g in part.groupby(["label", "method"], sort=True):
            g = g.sort_values("hours")
            color, marker = method_style(method)
            (line,) = ax.plot(g["hours"], g["energy_kj"], color=color, marker=marker, ms=4, lw=1, label=label)
            u = g["energy_u_kj"].fillna(0)
            bars.add(list(g["hours"]), list(g["energy_kj"]), color, ylo=list(g["energy_kj"] - u),
                     yhi=list(g["energy_kj"] + u))
            handles.setdefault(label, line)
            for r in g.itertuples():
                ax.annotate(r.mode, (r.hours, r.energy_kj), fontsize=6, xytext=(3, 3), textcoords="offset points")
        bars.draw(ax)
        ax.set(title=f"{model}, {dset}", xlabel="hours", ylabel="kJ")
    figure_legend(fig, list(handles.values()))
    return FigureResult(name, caption, fig, data, int(data["n"].sum()))
