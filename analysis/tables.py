"""The paper's Tables 1-4 from run records, each measured cell (mean, std over seeds, n) beside the paper's.

Every builder takes the runs DataFrame of `analysis.records` (already filtered to usable runs) and returns
a tidy DataFrame: one row per cell group, `n` = runs behind it, `*_paper` = the printed value, `*_ratio` =
measured / paper. Missing data stays NaN; `markdown()` shows it as "—", never as 0.
Rows are restricted to settings (model, dataset) that have at least one run, so a table shows which of
the paper's cells a setting still lacks without listing the whole paper.

Accuracy `acc` is the official metric (the best epoch's top-1), `acc_final` the last epoch's, beside it.
Energy cells carry `<metric>_u`: the run-to-run sample std s (0 for one run) and the mean of the runs'
own uncertainties u combined as sqrt(s^2 + u^2); u is averaged, not added in quadrature, because the
instrument's accuracy class, its largest part, is shared by every run on that meter. `<metric>_u_meter`
is False when a run lacks its own uncertainty (older records): the ± is then the spread alone.
`energy_scope` lists the scopes of the measured energies behind a cell.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from analysis import paper
from analysis.improvement import improvement
from analysis.naming import (
    DEFAULT_EB,
    displays,
    eb_all_low_precision,
    method_order,
    table3_labels,
)

STANDARD_LR = 0.1
TABLE1_RATIO = 0.5  # Tables 1 and 4 are at p = 0.5 in the paper


# --- shared helpers -----------------------------------------------------------------------------

# energy metric -> the per-run uncertainty column that goes with it
UNCERTAINTY = {"energy_kj": "energy_unc_kj", "est_energy_kj": "est_energy_unc_kj",
               "energy_mj": "energy_unc_mj", "est_energy_mj": "est_energy_unc_mj"}


def summarize(df: pd.DataFrame, keys: Sequence[str], metrics: dict[str, str]) -> pd.DataFrame:
    """Per group of `keys`: n (runs), and for each metric mean, sample std (ddof=1) and its own count;
    energy metrics also their combined uncertainty `_u` and the scopes behind them."""
    if df.empty:
        cols = list(keys) + ["n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
        return pd.DataFrame(columns=cols + [f"{m}_u" for m in metrics if metrics[m] in UNCERTAINTY])
    grouped = df.groupby(list(keys), dropna=False, sort=True)
    out = grouped.size().rename("n").to_frame()
    for name, col in metrics.items():
        stats = grouped[col].agg(["mean", "std", "count"])
        out[f"{name}_mean"] = stats["mean"]
        out[f"{name}_std"] = stats["std"]
        out[f"{name}_n"] = stats["count"]
        if col in UNCERTAINTY and UNCERTAINTY[col] in df:
            out = out.join(_uncertainty(df, list(keys), col, name))
    if "energy_scope" in df:
        out["energy_scope"] = grouped["energy_scope"].agg(lambda s: "+".join(sorted(set(s.dropna()))))
    return out.reset_index()


def _uncertainty(df: pd.DataFrame, keys: list[str], col: str, name: str) -> pd.DataFrame:
    """sqrt(s^2 + u^2) over the runs that have `col`; `_u_meter` says whether every one had its own u."""
    have = df[df[col].notna()]
    g = have.groupby(keys, dropna=False, sort=True)
    unc = g[UNCERTAINTY[col]]
    spread = g[col].std().fillna(0.0)
    mean_u = unc.mean()
    complete = unc.count() == g[col].count()
    combined = np.sqrt(spread ** 2 + mean_u.where(complete, 0.0).fillna(0.0) ** 2)
    return pd.DataFrame({f"{name}_u": combined, f"{name}_u_meter": complete})


def ratio_key(p) -> str:
    """Join key for pruning ratios: floats from JSON and text from CSV must meet ('' = unpruned)."""
    return "" if p is None or (isinstance(p, float) and math.isnan(p)) else f"{float(p):.2f}"


def _with_settings(paper_df: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """The paper's rows for the settings that have runs."""
    settings = set(zip(measured["model"], measured["dataset"]))
    return paper_df.loc[np.array([s in settings for s in zip(paper_df["model"], paper_df["dataset"])], dtype=bool)]


def _ratio(a: pd.Series, b: pd.Series) -> pd.Series:
    return pd.to_numeric(a, errors="coerce") / pd.to_numeric(b, errors="coerce")


def _draw_label(df: pd.DataFrame) -> pd.Series:
    """'10', '20', ... or 'final' (drawn at the end of the search budget), as Tables 1 and 4 print it."""
    final = df["draw_epoch"] >= df["epochs"]
    return df["draw_epoch"].map(lambda e: "" if pd.isna(e) else str(int(e))).where(~final, "final")


def lr_schedule_label(lr: float, milestones: Iterable[int], gamma: float = 0.1) -> str:
    """Table 1's notation, relative to the standard start of 0.1: [80,120] -> '80LR0.01_120LR0.001',
    a start at 0.01 with a decay at 100 -> '0LR0.01_100LR0.001'."""
    steps: list[tuple] = []
    if not math.isclose(lr, STANDARD_LR):
        steps.append((0, lr))
    for k, epoch in enumerate(milestones, start=1):
        steps = [s for s in steps if s[0] != epoch]  # a decay at epoch 0 replaces the start value
        steps.append((int(epoch), lr * gamma ** k))
    return "_".join(f"{e}LR{float(f'{v:.6g}'):g}" for e, v in steps)


# --- Table 2 ------------------------------------------------------------------------------------

TABLE2_METRICS = {"acc": "best_top1", "acc_final": "final_top1", "energy_kj": "energy_kj",
                  "est_energy_kj": "est_energy_kj", "est_mac_energy_kj": "est_mac_energy_kj", "flops_p": "flops_p"}


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, energy (kJ: measured and estimated in separate columns) and PFLOPs per method and ratio."""
    df = runs.assign(dataset=runs["dataset_name"], method=runs["method_name"],
                     pruning_ratio=runs["prune_ratio"].round(2))
    measured = summarize(df, ["model", "dataset", "method", "pruning_ratio"], TABLE2_METRICS)
    ref = _with_settings(paper.table2(), measured).rename(columns={
        "retrain_acc": "acc_paper", "energy_kj": "energy_kj_paper", "flops_p": "flops_p_paper",
        "note": "paper_note"})
    out = _outer(measured, ref, ["model", "dataset", "method", "pruning_ratio"])
    out["n"] = out["n"].fillna(0).astype(int)
    # The paper's LL energy is itself an estimate, so it is compared with our estimate, not our meter.
    paper_estimated = out["method"].isin(eb_all_low_precision())
    out["energy_paper_kind"] = np.where(out["energy_kj_paper"].isna(), "", np.where(paper_estimated, "estimated", "measured"))
    out["acc_ratio"] = _ratio(out["acc_mean"], out["acc_paper"])
    out["energy_ratio"] = _ratio(out["energy_kj_mean"], out["energy_kj_paper"]).where(~paper_estimated)
    out["est_energy_ratio"] = _ratio(out["est_energy_kj_mean"], out["energy_kj_paper"]).where(paper_estimated)
    out["flops_ratio"] = _ratio(out["flops_p_mean"], out["flops_p_paper"])
    order = {m: i for i, m in enumerate(method_order())}
    out["_order"] = out["method"].map(order).fillna(len(order))
    out = out.sort_values(["model", "dataset", "pruning_ratio", "_order", "method"]).drop(columns="_order")
    return out.reset_index(drop=True)


def table2_improvement(t2: pd.DataFrame) -> pd.DataFrame:
    """The "EB Train Improv." row per (model, dataset, ratio) from Table 2's measured means, beside the paper's.

    Energy: `energy_improv_x` uses the measured LL energy, `est_energy_improv_x` the estimated one (the
    paper's kind). Ratios with only unpruned runs (p = 0) have no row.
    """
    rows = []
    ranked = t2[(t2["n"] > 0) & ~t2["method"].isin(displays("reference"))]
    for (model, dataset, p), g in ranked.groupby(["model", "dataset", "pruning_ratio"], sort=True):
        acc = dict(zip(g["method"], g["acc_mean"]))
        flops = dict(zip(g["method"], g["flops_p_mean"]))
        measured = improvement(acc, dict(zip(g["method"], g["energy_kj_mean"])), flops)
        # Baselines stay measured; only the LL member takes its estimate, as the paper did.
        est_energy = dict(zip(g["method"], g["energy_kj_mean"]))
        est = dict(zip(g["method"], g["est_energy_kj_mean"]))
        est_energy.update({m: est.get(m, math.nan) for m in eb_all_low_precision()})
        estimated = improvement(acc, est_energy, flops)
        rows.append({
            "model": model, "dataset": dataset, "pruning_ratio": p,
            "acc_improv": measured.acc, "acc_basis": measured.acc_basis,
            "energy_improv_x": measured.energy_x, "energy_basis": measured.energy_basis,
            "est_energy_improv_x": estimated.energy_x, "est_energy_basis": estimated.energy_basis,
            "flops_improv_x": measured.flops_x, "flops_basis": measured.flops_basis,
            "n_methods": int((g["n"] > 0).sum()),
        })
    cols = ["model", "dataset", "pruning_ratio", "acc_improv", "acc_basis", "energy_improv_x", "energy_basis",
            "est_energy_improv_x", "est_energy_basis", "flops_improv_x", "flops_basis", "n_methods"]
    measured_df = pd.DataFrame(rows, columns=cols)
    ref = paper.table2_improvement().rename(columns={
        "acc_improv": "acc_improv_paper", "energy_improv_x": "energy_improv_x_paper",
        "flops_improv_x": "flops_improv_x_paper", "note": "paper_note"})
    have = set(zip(measured_df["model"], measured_df["dataset"], measured_df["pruning_ratio"].round(2)))
    ref = ref.loc[np.array([k in have for k in zip(ref["model"], ref["dataset"], ref["pruning_ratio"])], dtype=bool)]
    return _outer(measured_df, ref, ["model", "dataset", "pruning_ratio"])


# --- Tables 1 and 4 -----------------------------------------------------------------------------

ACC_METRICS = {"acc": "best_top1", "acc_final": "final_top1"}

def _fixed_draw_ff(runs: pd.DataFrame) -> pd.DataFrame:
    """EB Train (FF) runs at p = 0.5 with a ticket drawn at a chosen epoch (detector runs draw where they
    draw, so they cannot fill an epoch column)."""
    df = runs[runs["method_name"].eq(DEFAULT_EB) & runs["prune_ratio"].round(2).eq(TABLE1_RATIO)
              & runs["eb_draw_epoch"].notna()]
    return df.assign(dataset=df["dataset_name"], draw_epoch_label=_draw_label(df))


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Retrain accuracy per LR schedule of the search and draw epoch; the retrain keeps the standard
    schedule (initial LR 0.1; larger ones are Table 4's)."""
    df = _fixed_draw_ff(runs)
    df = df[np.isclose(df["lr"].astype(float), STANDARD_LR)]
    df = df.assign(lr_schedule=[lr_schedule_label(lr, m, g) for lr, m, g
                                in zip(df["search_lr"], df["search_lr_milestones"], df["lr_gamma"])])
    measured = summarize(df.rename(columns={"draw_epoch_label": "draw"}), ["model", "dataset", "lr_schedule", "draw"],
                         ACC_METRICS).rename(columns={"draw": "draw_epoch"})
    ref = _with_settings(paper.table1(), measured).rename(columns={"retrain_acc": "acc_paper", "note": "paper_note"})
    return _accuracy_table(measured, ref, ["model", "dataset", "lr_schedule", "draw_epoch"])


def table4(runs: pd.DataFrame) -> pd.DataFrame:
    """Retrain accuracy per initial LR and draw epoch, with the standard decays (/10 at 50% and 75% of the
    epochs) for the search and the retrain alike."""
    df = _fixed_draw_ff(runs)
    standard = [tuple(m) == (round(e * 0.5), round(e * 0.75)) and math.isclose(g, 0.1) and not own
                for m, e, g, own in zip(df["lr_milestones"], df["epochs"], df["lr_gamma"], df["search_schedule_own"])]
    df = df.loc[np.array(standard, dtype=bool)]
    measured = summarize(df.rename(columns={"draw_epoch_label": "draw", "lr": "initial_lr"}),
                         ["model", "dataset", "initial_lr", "draw"], ACC_METRICS).rename(columns={"draw": "draw_epoch"})
    ref = _with_settings(paper.table4(), measured).rename(columns={"retrain_acc": "acc_paper", "note": "paper_note"})
    return _accuracy_table(measured, ref, ["model", "dataset", "initial_lr", "draw_epoch"])


def _accuracy_table(measured: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = _outer(measured, ref, keys)
    out["n"] = out["n"].fillna(0).astype(int)
    out["acc_ratio"] = _ratio(out["acc_mean"], out["acc_paper"])
    out["_final"] = out["draw_epoch"].eq("final")
    out["_epoch"] = pd.to_numeric(out["draw_epoch"], errors="coerce")
    return out.sort_values(keys[:-1] + ["_final", "_epoch"]).drop(columns=["_final", "_epoch"]).reset_index(drop=True)


# --- Table 3 ------------------------------------------------------------------------------------

def table3(runs: pd.DataFrame) -> pd.DataFrame:
    """ImageNet: top-1/top-5 (with improvement over our own unpruned runs), PFLOPs and energy (MJ)."""
    labels = table3_labels()
    df = runs[runs["dataset_name"].eq("ImageNet") & runs["method_name"].isin(labels)]
    reference = df["method_name"].isin(displays("reference"))
    df = df.assign(dataset=df["dataset_name"], method=df["method_name"].map(labels),
                   pruning_ratio=df["prune_ratio"].where(~reference).round(2),
                   energy_mj=df["energy_kj"] / 1e3, energy_unc_mj=df["energy_unc_kj"] / 1e3,
                   est_energy_mj=df["est_energy_kj"] / 1e3, est_energy_unc_mj=df["est_energy_unc_kj"] / 1e3)
    measured = summarize(df, ["model", "dataset", "method", "pruning_ratio"],
                         {"top1": "best_top1", "top1_final": "final_top1", "top5": "top5", "flops_p": "flops_p",
                          "energy_mj": "energy_mj", "est_energy_mj": "est_energy_mj"})
    ref = _with_settings(paper.table3(), measured).rename(columns={
        "top1_acc": "top1_paper", "top5_acc": "top5_paper", "top1_improv": "top1_improv_paper",
        "top5_improv": "top5_improv_paper", "total_training_flops_p": "flops_p_paper",
        "total_training_energy_mj": "energy_mj_paper", "note": "paper_note"})
    out = _outer(measured, ref, ["model", "dataset", "method", "pruning_ratio"])
    out["n"] = out["n"].fillna(0).astype(int)
    unpruned_rows = out["method"].isin([labels[d] for d in displays("reference") if d in labels])
    unpruned = out[unpruned_rows].set_index("model")
    for k in ("top1", "top5"):
        out[f"{k}_improv"] = out[f"{k}_mean"] - out["model"].map(unpruned[f"{k}_mean"])
        out.loc[unpruned_rows, f"{k}_improv"] = np.nan
        out[f"{k}_ratio"] = _ratio(out[f"{k}_mean"], out[f"{k}_paper"])
    out["flops_ratio"] = _ratio(out["flops_p_mean"], out["flops_p_paper"])
    out["energy_ratio"] = _ratio(out["energy_mj_mean"], out["energy_mj_paper"])
    return out.reset_index(drop=True)


def _outer(measured: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Outer join on `keys`, ratios compared as text so 0.3 (JSON float) meets '0.3' (CSV)."""
    m = measured.copy()
    r = ref.copy()
    text = {"pruning_ratio": ratio_key, "initial_lr": lambda v: f"{float(v):g}", "draw_epoch": str}
    for frame in (m, r):
        for key in keys:
            # astype(object): an empty float column stays float after map(), and merge refuses to mix.
            frame[key] = (frame[key].map(text[key]) if key in text else frame[key]).astype(object)
    out = m.merge(r, on=keys, how="outer")
    if "pruning_ratio" in keys:
        out["pruning_ratio"] = pd.to_numeric(out["pruning_ratio"], errors="coerce")
    if "initial_lr" in keys:
        out["initial_lr"] = pd.to_numeric(out["initial_lr"], errors="coerce")
    if "paper_note" in out:
        out["paper_note"] = out["paper_note"].fillna("")
    return out
