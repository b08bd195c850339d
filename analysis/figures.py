"""The paper's Figures 1, 2, 3 and 5 and the suite's own energy views, from the runs DataFrame.

Each function returns a `FigureResult` holding the matplotlib figure (None when there is nothing to plot)
and exactly the data it plotted, so tests and REPORT.md can check and count what backs each figure.
Figures are built on `matplotlib.figure.Figure` directly (no pyplot state), Agg backend.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import LogFormatter, MaxNLocator  # noqa: E402

from analysis.naming import METHOD_ORDER  # noqa: E402

STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 7,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3,
    "axes.spines.top": False, "axes.spines.right": False,
}
DPI = 150
MAX_TRACE_POINTS = 5000  # a plot needs no more; the integral is the harness's job, not this figure's
MAX_FIG3_SETTINGS = 4
_TAB10 = matplotlib.colormaps["tab10"].colors
METHOD_COLORS = {m: _TAB10[i % 10] for i, m in enumerate(METHOD_ORDER)}
METHOD_MARKERS = dict(zip(METHOD_ORDER, "os^vDPX*hp"))


def ratio_color(p: float):
    """One colour per pruning ratio across every figure (p = 0.1 ... 0.9)."""
    return _TAB10[int(round(float(p) * 10)) % 10]


@dataclass
class FigureResult:
    name: str
    caption: str
    fig: Optional[Figure]
    data: pd.DataFrame
    n_runs: int
    arrays: Dict[str, np.ndarray] = field(default_factory=dict)


def _figure(n_panels: int, ncols: int = 2, width: float = 3.6, height: float = 2.8, nrows_per: int = 1):
    ncols = max(1, min(n_panels, ncols))
    nrows = math.ceil(n_panels / ncols) * nrows_per
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels * nrows_per:]:
        ax.set_visible(False)
    return fig, axes


def _settings(df: pd.DataFrame) -> List[Tuple[str, str]]:
    return sorted(set(zip(df["model"], df["dataset_name"])))


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
    d = runs[runs["method"].eq("dense") & runs["top1"].notna()]
    if d.empty:
        return pd.DataFrame(columns=["model", "dataset_name", "mean", "n"])
    return d.groupby(["model", "dataset_name"])["top1"].agg(["mean", "count"]).rename(
        columns={"count": "n"}).reset_index()


def _plot_curves(ax, pts: pd.DataFrame, ylabel: str) -> None:
    for p, g in pts.groupby("prune_ratio"):
        color = ratio_color(p)
        for drawn_by, style in (("fixed", dict(marker="o", ms=3.5, lw=1.2)), ("detector", dict(marker="*", ms=9, ls="none"))):
            d = g[g["drawn_by"].eq(drawn_by)].sort_values("draw_epoch")
            if len(d):
                ax.errorbar(d["draw_epoch"], d["mean"], yerr=[d["mean"] - d["min"], d["max"] - d["mean"]],
                            color=color, capsize=2.5, **style)
    ax.set_xlabel("epoch the ticket is drawn at")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)


def _legend(fig, ratios: Sequence[float], extra: Sequence[Tuple[str, dict]]) -> None:
    """One legend for the whole figure: per-axes legends cost most of the render time and hide data."""
    handles = [Line2D([], [], color=ratio_color(p), marker="o", ms=3.5, label=f"p = {p:g}") for p in sorted(ratios)]
    handles += [Line2D([], [], label=label, **style) for label, style in extra]
    _figure_legend(fig, handles)


def _figure_legend(fig, handles: List[Line2D]) -> None:
    # As many columns as the figure's width holds, so a one-panel figure does not clip its legend.
    per_row = max(1, int(fig.get_figwidth() / 1.9))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), per_row), frameon=False)


def _draw_epoch_figure(runs: pd.DataFrame, method: str, name: str, caption: str,
                       panels: Sequence[Tuple[str, str]], dense_line: bool) -> FigureResult:
    """Curves per p over draw epochs, one column per setting and one row per (column, label) panel."""
    sel = runs[runs["method"].eq(method) & runs["draw_epoch"].notna()]
    tables = {col: _by_draw_epoch(sel, col).assign(metric=col) for col, _ in panels}
    data = pd.concat(tables.values(), ignore_index=True)
    dense = _dense(runs) if dense_line else pd.DataFrame(columns=["model", "dataset_name", "mean", "n"])
    settings = _settings(data) if len(data) else []
    if not settings:
        return FigureResult(name, caption, None, data, 0)
    if dense_line:
        dense = dense.loc[np.array([s in settings for s in zip(dense["model"], dense["dataset_name"])], dtype=bool)]
        data = pd.concat([data, dense.assign(metric="top1", drawn_by="dense", prune_ratio=0.0)], ignore_index=True)
    fig, axes = _figure(len(settings), ncols=len(settings) if len(panels) > 1 else 2, nrows_per=len(panels))
    ncols = axes.shape[1]
    for i, (model, ds) in enumerate(settings):
        for j, (col, label) in enumerate(panels):
            ax = axes[(i // ncols) * len(panels) + j, i % ncols]
            t = tables[col]
            _plot_curves(ax, t[(t["model"] == model) & (t["dataset_name"] == ds)], label)
            if col == "top1" and dense_line:
                for value in dense.loc[(dense["model"] == model) & (dense["dataset_name"] == ds), "mean"]:
                    ax.axhline(value, color="0.3", ls="--", lw=1)
            # The whole epoch budget on x, as in the paper: where in training a ticket was drawn is the point.
            budget = sel.loc[(sel["model"] == model) & (sel["dataset_name"] == ds), "epochs"].max()
            if pd.notna(budget):
                ax.set_xlim(0, budget * 1.02)
            ax.set_title(f"{model}, {ds}")
    extra = []
    if data["drawn_by"].eq("detector").any():
        extra.append(("drawn by the EB detector", dict(color="0.3", marker="*", ms=9, ls="none")))
    if dense_line and len(dense):
        extra.append(("dense", dict(color="0.3", ls="--", lw=1)))
    _legend(fig, data.loc[data["drawn_by"].ne("dense"), "prune_ratio"].unique(), extra)
    n_runs = int(sel[sel[panels[0][0]].notna()].shape[0]) + (int(dense["n"].sum()) if dense_line else 0)
    return FigureResult(name, caption, fig, data, n_runs)


def fig1_retrain_accuracy(runs: pd.DataFrame) -> FigureResult:
    return _draw_epoch_figure(
        runs, "ebtrain-ff", "fig1_retrain_accuracy",
        "Fig 1: EB Train (FF) retrain top-1 vs the epoch the ticket is drawn at, per p; error bars = min/max "
        "over seeds; dashed = dense; stars = tickets drawn by the EB detector (the paper's star marks the "
        "best-search-accuracy epoch instead).",
        [("top1", "retrain top-1 (%)")], dense_line=True)


def fig2_low_precision(runs: pd.DataFrame) -> FigureResult:
    return _draw_epoch_figure(
        runs, "ebtrain-lf", "fig2_low_precision",
        "Fig 2: EB Train (LF: 8-bit search, FP32 retrain) retrain top-1 (top) and total training PFLOPs "
        "(bottom) vs draw epoch, per p; dashed = dense.",
        [("top1", "retrain top-1 (%)"), ("flops_p", "total training PFLOPs")], dense_line=True)


def fig5_training_flops(runs: pd.DataFrame) -> FigureResult:
    return _draw_epoch_figure(
        runs, "ebtrain-ff", "fig5_training_flops",
        "Fig 5: EB Train (FF) total training PFLOPs (search + retrain) vs draw epoch, per p.",
        [("flops_p", "total training PFLOPs")], dense_line=False)


# --- Fig 3 ----------------------------------------------------------------------------------------

def _eb_marks(run: pd.Series) -> Dict[float, int]:
    """Detection epoch per ratio: `eb_drawn` events (every tracked ratio), else the record's own `eb`."""
    marks: Dict[float, int] = {}
    events = Path(run["run_dir"]) / "events.jsonl"
    if events.is_file():
        with open(events, encoding="utf-8") as fh:
            for line in fh:
                if '"eb_drawn"' not in line:
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "eb_drawn" and ev.get("ratio") is not None:
                    marks.setdefault(round(float(ev["ratio"]), 6), int(ev["epoch"]))
    if pd.notna(run.get("eb_ratio")) and pd.notna(run.get("eb_epoch")) and run.get("eb_detected") is not False:
        marks.setdefault(round(float(run["eb_ratio"]), 6), int(run["eb_epoch"]))
    return marks


def fig3_mask_distance(runs: pd.DataFrame) -> FigureResult:
    """Per setting, the run with the largest masks.jsonl (the most epochs and ratios); a panel per ratio."""
    name = "fig3_mask_distance"
    caption = ("Fig 3: pairwise mask distance between the tickets of every two search epochs, normalised "
               "to [0, 1] (yellow = small); red lines = EB ticket detected.")
    cand = runs.assign(mask_file=runs["run_dir"].map(lambda d: Path(d) / "masks.jsonl"))
    cand = cand.loc[np.array([p.is_file() for p in cand["mask_file"]], dtype=bool)]
    cand = cand.assign(mask_size=cand["mask_file"].map(lambda p: p.stat().st_size))
    chosen = (cand.sort_values(["mask_size", "run_id"], ascending=[False, True])
              .groupby(["model", "dataset_name"], sort=True).head(1).head(MAX_FIG3_SETTINGS))
    panels, arrays = [], {}
    if len(chosen):
        # The runner's own reader (imports torch, so only when there are masks to read).
        from experiments.earlybird import distance_matrix, load_masks
    for _, run in chosen.iterrows():
        marks = _eb_marks(run)
        for ratio in sorted(run["eb_ratios"]):
            epochs, masks = load_masks(run["mask_file"], ratio)
            if len(epochs) < 2:
                continue
            dist = distance_matrix(masks).numpy()
            top = dist.max()
            # Linear normalisation to [0, 1], as the paper does "for the ease of visualisation".
            norm = dist / top if top > 0 else dist
            key = f"{run['run_id']}@{ratio:g}"
            arrays[key] = norm
            panels.append({"model": run["model"], "dataset_name": run["dataset_name"], "run_id": run["run_id"],
                           "ratio": ratio, "first_epoch": epochs[0], "last_epoch": epochs[-1],
                           "n_epochs": len(epochs), "eb_epoch": marks.get(round(ratio, 6)), "key": key,
                           "epochs": epochs})
    data = pd.DataFrame(panels, columns=["model", "dataset_name", "run_id", "ratio", "first_epoch", "last_epoch",
                                         "n_epochs", "eb_epoch", "key", "epochs"])
    if data.empty:
        return FigureResult(name, caption, None, data, 0)
    fig, axes = _figure(len(data), ncols=4, width=2.8, height=3.1)
    image = None
    for ax, (_, p) in zip(axes.flat, data.iterrows()):
        e0, e1 = p["first_epoch"], p["last_epoch"]
        image = ax.imshow(arrays[p["key"]], cmap="viridis_r", vmin=0, vmax=1, origin="upper",
                          extent=(e0 - 0.5, e1 + 0.5, e1 + 0.5, e0 - 0.5), interpolation="nearest")
        if p["eb_epoch"] is not None and not pd.isna(p["eb_epoch"]):
            ax.axvline(p["eb_epoch"], color="red", lw=1)
            ax.axhline(p["eb_epoch"], color="red", lw=1)
        eb = "" if pd.isna(p["eb_epoch"]) else f", EB @ {int(p['eb_epoch'])}"
        ax.set_title(f"{p['model']} {p['dataset_name']}\np = {p['ratio']:g}{eb}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(False)
    fig.colorbar(image, ax=list(axes.flat), shrink=0.8, label="normalised mask distance")
    return FigureResult(name, caption, fig, data, int(data["run_id"].nunique()), arrays)


# --- the suite's own energy views -------------------------------------------------------------------

def pareto_front(energy: Sequence[float], acc: Sequence[float]) -> List[int]:
    """Indices of points no other point beats on both (lower energy, higher accuracy), by energy."""
    order = sorted(range(len(energy)), key=lambda i: (energy[i], -acc[i]))
    front, best = [], -math.inf
    for i in order:
        if acc[i] > best:
            front.append(i)
            best = acc[i]
    return front


def energy_accuracy(runs: pd.DataFrame) -> FigureResult:
    """Mean kJ vs mean top-1 per (method, p), a panel per setting; estimated energies hollow and apart."""
    name = "energy_accuracy"
    caption = ("Energy (kJ) vs retrain top-1 per method and p (mean ± std over seeds). Filled = measured, "
               "hollow = estimated (never on the measured Pareto front, which is the line).")
    parts = []
    for kind, col in (("measured", "energy_kj"), ("estimated", "est_energy_kj")):
        d = runs[runs[col].notna() & runs["top1"].notna()]
        if len(d):
            g = d.groupby(["model", "dataset_name", "method_name", "prune_ratio"]).agg(
                energy_kj=(col, "mean"), energy_std=(col, "std"), top1=("top1", "mean"),
                top1_std=("top1", "std"), n=("top1", "count")).reset_index()
            parts.append(g.assign(kind=kind))
    cols = ["model", "dataset_name", "method_name", "prune_ratio", "energy_kj", "energy_std", "top1",
            "top1_std", "n", "kind", "on_front"]
    if not parts:
        return FigureResult(name, caption, None, pd.DataFrame(columns=cols), 0)
    data = pd.concat(parts, ignore_index=True).assign(on_front=False)
    for _, g in data[data["kind"].eq("measured")].groupby(["model", "dataset_name"]):
        front = pareto_front(list(g["energy_kj"]), list(g["top1"]))
        data.loc[g.index[front], "on_front"] = True
    settings = _settings(data)
    fig, axes = _figure(len(settings), ncols=2, width=4.2, height=3.2)
    for ax, (model, ds) in zip(axes.flat, settings):
        s = data[(data["model"] == model) & (data["dataset_name"] == ds)]
        for (method, kind), g in s.groupby(["method_name", "kind"]):
            color = METHOD_COLORS.get(method, "0.4")
            ax.errorbar(g["energy_kj"], g["top1"], xerr=g["energy_std"].fillna(0), yerr=g["top1_std"].fillna(0),
                        ls="none", marker=METHOD_MARKERS.get(method, "o"), ms=5, capsize=2, color=color,
                        mfc=color if kind == "measured" else "none")
        front = s[s["on_front"]].sort_values("energy_kj")
        ax.step(front["energy_kj"], front["top1"], where="post", color="0.2", lw=0.8, alpha=0.7)
        ax.set_xscale("log")
        # Plain numbers: the default log labels are mathtext, slower to render and harder to read.
        ax.xaxis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        ax.xaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
        ax.set_xlabel("total training energy (kJ)")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"{model}, {ds}")
    methods = [m for m in METHOD_ORDER if m in set(data["method_name"])] + sorted(set(data["method_name"]) - set(METHOD_ORDER))
    handles = [Line2D([], [], ls="none", color=METHOD_COLORS.get(m, "0.4"), marker=METHOD_MARKERS.get(m, "o"), label=m)
               for m in methods]
    if data["kind"].eq("estimated").any():
        handles.append(Line2D([], [], ls="none", color="0.3", marker="o", mfc="none", label="hollow: estimated energy"))
    _figure_legend(fig, handles)
    n_runs = int(runs[(runs["energy_kj"].notna() | runs["est_energy_kj"].notna()) & runs["top1"].notna()].shape[0])
    return FigureResult(name, caption, fig, data, n_runs)


def power_trace(runs: pd.DataFrame, run_id: Optional[str] = None) -> FigureResult:
    """Power over time for one run (the newest measured one unless named), its phases shaded."""
    name = "power_trace"
    have = runs.loc[np.array([(Path(d) / "power.csv").is_file() for d in runs["run_dir"]], dtype=bool)]
    if run_id is not None:
        have = have[have["run_id"].eq(run_id)]
    cols = ["phase", "start_s", "end_s", "energy_j", "mean_w"]
    if have.empty:
        return FigureResult(name, "Power trace per phase: no run with power.csv.", None, pd.DataFrame(columns=cols), 0)
    run = have.sort_values(["created", "run_id"]).iloc[-1]
    trace = pd.read_csv(Path(run["run_dir"]) / "power.csv")
    trace = trace[pd.to_numeric(trace["t"], errors="coerce").notna() & pd.to_numeric(trace["watts"], errors="coerce").notna()]
    t0 = min([float(trace["t"].min())] + [p["start"] for p in run["phases"] if p.get("start") is not None])
    step = max(1, len(trace) // MAX_TRACE_POINTS)
    shown = trace.iloc[::step]
    phases = pd.DataFrame([{"phase": p.get("name"), "start_s": p["start"] - t0, "end_s": p["end"] - t0,
                            "energy_j": p.get("energy_j"), "mean_w": p.get("mean_w")}
                           for p in run["phases"] if p.get("start") is not None and p.get("end") is not None],
                          columns=cols)
    fig, axes = _figure(1, width=7.0, height=2.8)
    ax = axes[0, 0]
    for i, p in phases.iterrows():
        ax.axvspan(p["start_s"], p["end_s"], color=_TAB10[i % 10], alpha=0.15, lw=0,
                   label=f"{p['phase']}: " + ("energy n/a" if pd.isna(p["energy_j"]) else f"{p['energy_j'] / 1e3:.2f} kJ"))
    ax.plot(shown["t"] - t0, shown["watts"], color="0.15", lw=0.7)
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("power (W)")
    ax.set_title(f"{run['run_id']} — meter {run['meter_kind'] or 'unknown'} ({run['meter_where'] or '?'})")
    ax.legend(loc="upper right")
    caption = (f"Power trace of run {run['run_id']} ({len(trace)} samples"
               + (f", every {step}th shown" if step > 1 else "") + "), phases shaded with their energy.")
    return FigureResult(name, caption, fig, phases, 1, {"t": shown["t"].to_numpy() - t0, "watts": shown["watts"].to_numpy()})


TITLES = {
    "fig1_retrain_accuracy": "Fig 1: retrain accuracy vs draw epoch",
    "fig2_low_precision": "Fig 2: low-precision search, accuracy and FLOPs vs draw epoch",
    "fig3_mask_distance": "Fig 3: pairwise mask distance",
    "fig5_training_flops": "Fig 5: total training FLOPs vs draw epoch",
    "energy_accuracy": "Energy vs accuracy per method (Pareto view)",
    "power_trace": "Power trace per phase",
}
ALL_FIGURES = (fig1_retrain_accuracy, fig2_low_precision, fig3_mask_distance, fig5_training_flops,
               energy_accuracy, power_trace)
