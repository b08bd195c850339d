"""The suite's own energy views: energy against accuracy per method (with its Pareto front), and one
run's power trace with its phases."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

from analysis.energy_estimate import DEFAULT
from analysis.figures import FigureResult
from analysis.naming import method_order
from analysis.plotting import (
    _TAB10,
    ErrorBars,
    figure,
    figure_legend,
    method_style,
    settings,
)
from experiments import paths
from hw.trace import read_trace

MAX_TRACE_POINTS = 5000  # a plot needs no more; the integral is the harness's job, not this figure's


def pareto_front(energy: Sequence[float], acc: Sequence[float]) -> list[int]:
    """Indices of points no other point beats on both (lower energy, higher accuracy), by energy."""
    order = sorted(range(len(energy)), key=lambda i: (energy[i], -acc[i]))
    front, best = [], -math.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return front


ACC = "best_top1"
DATA_COLUMNS = ["model", "dataset_name", "method_name", "prune_ratio", "cell", "energy_kj", "energy_std", "top1",
                "top1_std", "n", "kind", "energy_scope", "on_front", "run_ids"]


def _energy_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean kJ and top-1 (best epoch) per cell (and scope), measured and estimated apart; only measured
    points of one scope can be on a Pareto front (a front never mixes scopes). Runs whose record calls
    their energy invalid are not plotted."""
    parts = []
    valid = runs["energy_valid"].map(lambda v: v is not False) if "energy_valid" in runs else True
    for kind, col in (("measured", "energy_kj"), ("estimated", "est_energy_kj")):
        d = runs[runs[col].notna() & runs[ACC].notna() & valid]
        d = d.assign(energy_scope=d["energy_scope"].fillna("unknown") if kind == "measured" else "estimated")
        if len(d):
            g = d.groupby(["model", "dataset_name", "method_name", "prune_ratio", "cell", "energy_scope"]).agg(
                energy_kj=(col, "mean"), energy_std=(col, "std"), top1=(ACC, "mean"),
                top1_std=(ACC, "std"), n=(ACC, "count"),
                run_ids=("run_id", lambda s: " ".join(sorted(s)))).reset_index()
            parts.append(g.assign(kind=kind))
    if not parts:
        return pd.DataFrame(columns=DATA_COLUMNS)
    data = pd.concat(parts, ignore_index=True).assign(on_front=False)
    for _, g in data[data["kind"].eq("measured")].groupby(["model", "dataset_name", "energy_scope"]):
        front = pareto_front(list(g["energy_kj"]), list(g["top1"]))
        data.loc[g.index[front], "on_front"] = True
    return data[DATA_COLUMNS]


def energy_accuracy(runs: pd.DataFrame) -> FigureResult:
    """Mean kJ vs mean top-1 per (method, p), a panel per setting; estimated energies hollow and apart."""
    name = "energy_accuracy"
    caption = (f"Energy (kJ) vs retrain top-1 (best epoch), one point per cell (mean; error bars ± std over the "
               f"seeds of the cell). Filled = measured, hollow = estimated (rule {DEFAULT.name}; never on a "
               "measured Pareto front, the line). "
               "Points of different energy scope are not comparable; the legend names each scope.")
    data = _energy_points(runs)
    if data.empty:
        return FigureResult(name, caption, None, data, 0)
    panels = settings(data)
    fig, axes = figure(len(panels), ncols=2, width=4.2, height=3.2)
    for ax, (model, ds) in zip(axes.flat, panels):
        _energy_panel(ax, data[(data["model"] == model) & (data["dataset_name"] == ds)])
        ax.set_title(f"{model}, {ds}")
    methods = [m for m in method_order() if m in set(data["method_name"])]
    methods += sorted(set(data["method_name"]) - set(methods))
    handles = [Line2D([], [], ls="none", color=method_style(m)[0], marker=method_style(m)[1], label=m) for m in methods]
    if data["kind"].eq("estimated").any():
        handles.append(Line2D([], [], ls="none", color="0.3", marker="o", mfc="none", label="hollow: estimated energy"))
    scopes = sorted(set(data.loc[data["kind"].eq("measured"), "energy_scope"]))
    handles.append(Line2D([], [], ls="none", label=f"measured scope: {', '.join(scopes) or 'none'}"))
    figure_legend(fig, handles)
    n_runs = int(runs[(runs["energy_kj"].notna() | runs["est_energy_kj"].notna()) & runs[ACC].notna()].shape[0])
    return FigureResult(name, caption, fig, data, n_runs)


def _energy_panel(ax, s: pd.DataFrame) -> None:
    bars = ErrorBars()
    for (method, kind), g in s.groupby(["method_name", "kind"]):
        color, marker = method_style(method)
        ax.plot(g["energy_kj"], g["top1"], ls="none", marker=marker, ms=5, color=color,
                mfc=color if kind == "measured" else "none")
        de, da = g["energy_std"].fillna(0), g["top1_std"].fillna(0)
        bars.add(list(g["energy_kj"]), list(g["top1"]), color, ylo=list(g["top1"] - da), yhi=list(g["top1"] + da),
                 xlo=list(g["energy_kj"] - de), xhi=list(g["energy_kj"] + de))
    bars.draw(ax, lw=0.8)
    for _, front in s[s["on_front"]].groupby("energy_scope"):
        front = front.sort_values("energy_kj")
        ax.step(front["energy_kj"], front["top1"], where="post", color="0.2", lw=0.8, alpha=0.7)
    ax.set_xscale("log")
    # Plain numbers: the default log labels are mathtext, slower to render and harder to read.
    ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_xlabel("total training energy (kJ)")
    ax.set_ylabel("top-1, best epoch (%)")


def power_trace(runs: pd.DataFrame, run_id: str | None = None) -> FigureResult:
    """Power over time for one run (the newest measured one unless named), its phases shaded."""
    name = "power_trace"
    have = runs.loc[np.array([Path(paths.power_csv(d)).is_file() for d in runs["run_dir"]], dtype=bool)]
    if run_id is not None:
        have = have[have["run_id"].eq(run_id)]
    cols = ["phase", "start_s", "end_s", "energy_j", "mean_w", "run_ids"]
    if have.empty:
        return FigureResult(name, "Power trace per phase: no run with a power trace.", None,
                            pd.DataFrame(columns=cols), 0)
    run = have.sort_values(["created", "run_id"]).iloc[-1]
    trace = read_trace(paths.power_csv(run["run_dir"]))
    t0 = min([float(trace.t.min())] + [p["start"] for p in run["phases"] if p.get("start") is not None])
    step = max(1, len(trace) // MAX_TRACE_POINTS)
    t, watts = trace.t[::step] - t0, trace.watts[::step]
    phases = pd.DataFrame([{"phase": p.get("name"), "start_s": p["start"] - t0, "end_s": p["end"] - t0,
                            "energy_j": p.get("energy_j"), "mean_w": p.get("mean_w"), "run_ids": run["run_id"]}
                           for p in run["phases"] if p.get("start") is not None and p.get("end") is not None],
                          columns=cols)
    fig, axes = figure(1, width=7.0, height=2.8)
    ax = axes[0, 0]
    for i, p in phases.iterrows():
        ax.axvspan(p["start_s"], p["end_s"], color=_TAB10[i % 10], alpha=0.15, lw=0,
                   label=f"{p['phase']}: " + ("energy n/a" if pd.isna(p["energy_j"]) else f"{p['energy_j'] / 1e3:.2f} kJ"))
    ax.plot(t, watts, color="0.15", lw=0.7)
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(f"{run['run_id']} — meter {run['meter_kind'] or 'unknown'} ({run['meter_where'] or '?'})")
    ax.legend(loc="upper right")
    caption = (f"Power trace of run {run['run_id']} ({len(trace)} samples"
               + (f", every {step}th shown" if step > 1 else "") + "), phases shaded with their energy.")
    return FigureResult(name, caption, fig, phases, 1, {"t": t, "watts": watts})
