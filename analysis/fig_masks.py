"""Fig 3: the pairwise mask distance between the tickets of every two search epochs, per pruning ratio."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.figures import FigureResult
from analysis.plotting import figure, ticks
from experiments import events as ev
from experiments import paths
from experiments.earlybird import distance_matrix, load_masks  # the runner's own reader: one format

MAX_FIG3_SETTINGS = 4


def _eb_marks(run: pd.Series) -> dict[float, int]:
    """Detection epoch per ratio: `eb_drawn` events (every tracked ratio), else the record's own `eb`."""
    marks: dict[float, int] = {}
    for e in ev.read_events(paths.events(run["run_dir"])):
        if e.get("event") == ev.EB_DRAWN and e.get("ratio") is not None:
            marks.setdefault(round(float(e["ratio"]), 6), int(e["epoch"]))
    if pd.notna(run.get("eb_ratio")) and pd.notna(run.get("eb_epoch")) and run.get("eb_detected") is not False:
        marks.setdefault(round(float(run["eb_ratio"]), 6), int(run["eb_epoch"]))
    return marks


def _chosen(runs: pd.DataFrame) -> pd.DataFrame:
    """Per setting, the run with the largest mask log (the most epochs and ratios)."""
    cand = runs.assign(mask_file=runs["run_dir"].map(lambda d: Path(paths.masks(d))))
    cand = cand.loc[np.array([p.is_file() for p in cand["mask_file"]], dtype=bool)]
    cand = cand.assign(mask_size=cand["mask_file"].map(lambda p: p.stat().st_size))
    return (cand.sort_values(["mask_size", "run_id"], ascending=[False, True])
            .groupby(["model", "dataset_name"], sort=True).head(1).head(MAX_FIG3_SETTINGS))


def _panels(chosen: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One panel per (run, ratio) with at least two epochs of masks: its normalised distance matrix."""
    panels, arrays = [], {}
    for _, run in chosen.iterrows():
        marks = _eb_marks(run)
        for ratio in sorted(run["eb_ratios"]):
            epochs, masks = load_masks(run["mask_file"], ratio)
            if len(epochs) < 2:
                continue
            dist = distance_matrix(masks)
            top = dist.max()
            # Linear normalisation to [0, 1], as the paper does "for the ease of visualisation".
            key = f"{run['run_id']}@{ratio:g}"
            arrays[key] = dist / top if top > 0 else dist
            panels.append({"model": run["model"], "dataset_name": run["dataset_name"], "run_id": run["run_id"],
                           "ratio": ratio, "first_epoch": epochs[0], "last_epoch": epochs[-1],
                           "n_epochs": len(epochs), "eb_epoch": marks.get(round(ratio, 6)), "key": key,
                           "epochs": epochs, "run_ids": run["run_id"]})
    return pd.DataFrame(panels, columns=COLUMNS), arrays


COLUMNS = ["model", "dataset_name", "run_id", "ratio", "first_epoch", "last_epoch", "n_epochs", "eb_epoch", "key",
           "epochs", "run_ids"]


COLORBAR_IN = 1.0  # inches right of the panels for the colorbar, its ticks and its label


def fig3_mask_distance(runs: pd.DataFrame) -> FigureResult:
    """A panel per ratio of each setting's richest mask log."""
    name = "fig3_mask_distance"
    caption = ("Fig 3: pairwise mask distance between the tickets of every two search epochs, normalised "
               "to [0, 1] (yellow = small); red lines = EB ticket detected.")
    data, arrays = _panels(_chosen(runs))
    if data.empty:
        return FigureResult(name, caption, None, data, 0)
    fig, axes = figure(len(data), ncols=4, width=2.8, height=3.1, title_lines=2, right_extra=COLORBAR_IN)
    image = None
    for ax, (_, p) in zip(axes.flat, data.iterrows()):
        image = _panel(ax, p, arrays[p["key"]])
    # in the strip kept for it right of the panels, 80% of their height
    width, sp = fig.get_figwidth(), fig.subplotpars
    cax = fig.add_axes((sp.right + 0.25 / width, sp.bottom + 0.1 * (sp.top - sp.bottom), 0.12 / width,
                        0.8 * (sp.top - sp.bottom)))
    fig.colorbar(image, cax=cax, label="normalised mask distance")
    return FigureResult(name, caption, fig, data, int(data["run_id"].nunique()), arrays)


def _panel(ax, p: pd.Series, matrix: np.ndarray):
    e0, e1 = p["first_epoch"], p["last_epoch"]
    image = ax.imshow(matrix, cmap="viridis_r", vmin=0, vmax=1, origin="upper",
                      extent=(e0 - 0.5, e1 + 0.5, e1 + 0.5, e0 - 0.5), interpolation="nearest")
    if p["eb_epoch"] is not None and not pd.isna(p["eb_epoch"]):
        ax.axvline(p["eb_epoch"], color="red", lw=1)
        ax.axhline(p["eb_epoch"], color="red", lw=1)
    eb = "" if pd.isna(p["eb_epoch"]) else f", EB @ {int(p['eb_epoch'])}"
    ax.set_title(f"{p['model']} {p['dataset_name']}\np = {p['ratio']:g}{eb}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("epoch")
    ax.xaxis.set_major_locator(ticks(integer=True))
    ax.yaxis.set_major_locator(ticks(integer=True))
    ax.grid(False)
    ax.tick_params(left=True, bottom=True)  # no grid here to mark the ticks
    return image
