"""The paper's Tables 1-4 from run records, each measured cell (mean, std over seeds, n) beside the paper's.

Every builder takes the runs DataFrame of `analysis.records` (already filtered to usable runs) and returns
a tidy DataFrame: one row per cell (`analysis.cells`: runs identical but for the seed) under the table's
row key, `setting` saying how cells sharing a key differ, `n` and `run_ids` = the runs behind it, `flags`
its late or ticketless runs, `*_paper` = the printed value, `*_ratio` = measured / paper. Missing data stays NaN; `markdown()` shows it as "—", never as 0.
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

from analysis import cells, paper
from analysis.records import NO_TICKET, TOO_LATE
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
               "est_mac_energy_kj": "est_mac_energy_unc_kj",
               "energy_mj": "energy_unc_mj", "est_energy_mj": "est_energy_unc_mj"}
ENERGY_COLUMNS = ("energy_kj", "est_energy_kj", "est_mac_energy_kj", "est_fit_energy_kj", "energy_mj",
                  "est_energy_mj")
CONTEXT_FREE = ("method", "prune_ratio")  # what the methods of one Improv. row may differ in
FACTS = ["n_late", "n_no_ticket", "flags", "ticket_epoch_mean", "ticket_epoch_min", "ticket_epoch_max",
         "best_model", "final_model", "energy_invalid", "context"]


def summarize(df: pd.DataFrame, keys: Sequence[str], metrics: dict[str, str]) -> pd.DataFrame:
    """Per cell (`analysis.cells`) of each group of `keys`: n (runs), its `run_ids`, and for each metric
    mean, sample std (ddof=1) and its own count; energy metrics also their combined uncertainty `_u` and
    the scopes behind them; `flags`, the ticket epochs and which models the accuracies evaluate. A cell
    with a run whose energy the record calls invalid shows no energy mean: `energy_invalid` says why."""
    keys = list(keys) + ["cell"]
    if df.empty:
        cols = keys + ["n", "run_ids"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std", "n")]
        return pd.DataFrame(columns=cols + [f"{m}_u" for m in metrics if metrics[m] in UNCERTAINTY] + FACTS)
    grouped = df.groupby(keys, dropna=False, sort=True)
    out = grouped.size().rename("n").to_frame()
    out["run_ids"] = grouped["run_id"].agg(lambda s: " ".join(sorted(s)))
    for name, col in metrics.items():
        stats = grouped[col].agg(["mean", "std", "count"])
        out[f"{name}_mean"] = stats["mean"]
        out[f"{name}_std"] = stats["std"]
        out[f"{name}_n"] = stats["count"]
        if col in UNCERTAINTY and UNCERTAINTY[col] in df:
            out = out.join(_uncertainty(df, keys, col, name))
    if "energy_scope" in df:
        out["energy_scope"] = grouped["energy_scope"].agg(lambda s: "+".join(sorted(set(s.dropna()))))
    facts = _cell_facts(df, keys)  # in the groupby's order
    for col in facts:
        out[col] = facts[col].to_numpy()
    _blank_invalid(out, [m for m, c in metrics.items() if c in ENERGY_COLUMNS])
    return out.reset_index()


def _cell_facts(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per cell, in the groupby's order: flags ("1 late"), ticket epochs (mean, min, max over its EB draws),
    the models its accuracies evaluate, the energy verdict and its Improv. context."""
    flag = df["eb_flag"].fillna("") if "eb_flag" in df else pd.Series("", index=df.index)
    # the EB methods' draw epochs only (a fixed draw's or the detector's); other methods have none
    ticket = pd.to_numeric(df["draw_epoch"], errors="coerce") if "draw_epoch" in df else np.nan
    bad = df["energy_valid"].map(lambda v: v is False) if "energy_valid" in df else False
    reason = df["energy_invalid_reasons"].where(bad) if "energy_invalid_reasons" in df and "energy_valid" in df \
        else None
    runs = df[keys].assign(late=flag.eq(TOO_LATE), none=flag.eq(NO_TICKET), ticket=ticket, bad=bad, reason=reason)
    by_cell = runs.groupby(keys, dropna=False, sort=True)
    facts = by_cell.agg(
        n_late=("late", "sum"), n_no_ticket=("none", "sum"), ticket_epoch_mean=("ticket", "mean"),
        ticket_epoch_min=("ticket", "min"), ticket_epoch_max=("ticket", "max"), n_bad=("bad", "sum"))
    reasons = by_cell["reason"].agg(lambda s: sorted({r for r in s.dropna() if r}))
    grouped = df.groupby(keys, dropna=False, sort=True)
    out = pd.DataFrame({"n_late": facts["n_late"].astype(int), "n_no_ticket": facts["n_no_ticket"].astype(int)})
    out["flags"] = [_flags(late, none) for late, none in zip(out["n_late"], out["n_no_ticket"])]
    for col in ("ticket_epoch_mean", "ticket_epoch_min", "ticket_epoch_max"):
        out[col] = facts[col]
    for col in ("best_model", "final_model"):
        if col in df:
            out[col] = grouped[col].agg(lambda s: "+".join(sorted(set(s.dropna()))))
    out["energy_invalid"] = [_invalid(n, found) for n, found in zip(facts["n_bad"], reasons)]
    specs = grouped["cell_spec"].first() if "cell_spec" in df else pd.Series(None, index=facts.index)
    out["context"] = [cells.digest(spec, CONTEXT_FREE) if spec else _cell(key) for key, spec in specs.items()]
    return out.reset_index(drop=True)


def _cell(key) -> str:
    return key[-1] if isinstance(key, tuple) else key


def _flags(late: int, none: int) -> str:
    parts = [f"{late} late"] if late else []
    return ", ".join(parts + ([f"{none} without ticket"] if none else []))


def _invalid(n_bad: int, found: list[str]) -> str:
    """'' unless a run's record calls its energy invalid; else how many and their reasons, once each."""
    if not n_bad:
        return ""
    return f"{int(n_bad)} run(s) with invalid energy" + (f": {'; '.join(found)}" if found else "")


def _blank_invalid(out: pd.DataFrame, energy_metrics: list[str]) -> None:
    """An invalid energy is not averaged in: the cell's energy statistics become missing."""
    bad = out["energy_invalid"].astype(bool)
    for name in energy_metrics:
        for suffix in ("mean", "std", "u"):
            if f"{name}_{suffix}" in out:
                out.loc[bad, f"{name}_{suffix}"] = np.nan


def cell_labels(table: pd.DataFrame, runs: pd.DataFrame, row_keys: Sequence[str]) -> pd.Series:
    """Per row: how its cell differs from the other cells sharing its `row_keys` ('' when alone)."""
    specs = runs.groupby("cell")["cell_spec"].first().to_dict()
    have = table[table["cell"].notna()]
    groups = {c: json_key(r) for c, r in zip(have["cell"], have[list(row_keys)].itertuples(index=False))}
    found = cells.labels({c: specs[c] for c in groups}, groups)
    return table["cell"].map(found).fillna("")


def json_key(values) -> str:
    return "|".join(str(v) for v in values)


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
                  "est_energy_kj": "est_energy_kj", "est_mac_energy_kj": "est_mac_energy_kj",
                  "est_fit_energy_kj": "est_fit_energy_kj", "flops_p": "flops_p"}
TABLE2_KEYS = ["model", "dataset", "method", "pruning_ratio"]


def table2_protocol(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(Table 2's runs, the others): Table 2 draws each ticket where the detector finds it, with the
    search on the main schedule and stopping at the ticket. A ticket drawn at a fixed epoch (Tables 1/4,
    Figs 1/2/5), a search with its own schedule (Table 1) or one run to the end (Fig 3) is another
    experiment, listed beneath the table instead."""
    other = (runs["eb_draw_epoch"].notna() | runs["search_schedule_own"].fillna(False).astype(bool)
             | runs["eb_stop"].eq(False))
    return runs[~other], runs[other]


def why_not_table2(run: pd.Series) -> str:
    if pd.notna(run["eb_draw_epoch"]):
        return "ticket drawn at a fixed epoch (Tables 1/4, Figs 1/2/5), not by the detector"
    if run["search_schedule_own"]:
        return "the search has its own lr schedule (Table 1)"
    return "the search runs past the ticket (eb_stop false, Fig 3)"


def table2(runs: pd.DataFrame) -> pd.DataFrame:
    """Accuracy, energy (kJ: measured and estimated in separate columns) and PFLOPs per method, ratio and
    cell; a row key with several cells has a row per cell, `setting` saying how they differ."""
    runs = table2_protocol(runs)[0]
    df = runs.assign(dataset=runs["dataset_name"], method=runs["method_name"],
                     pruning_ratio=runs["prune_ratio"].round(2))
    measured = summarize(df, TABLE2_KEYS, TABLE2_METRICS)
    measured["setting"] = cell_labels(measured, df, TABLE2_KEYS) if len(measured) else ""
    measured["context_setting"] = context_labels(measured, df) if len(measured) else ""
    ref = _with_settings(paper.table2(), measured).rename(columns={
        "retrain_acc": "acc_paper", "energy_kj": "energy_kj_paper", "flops_p": "flops_p_paper",
        "note": "paper_note"})
    out = _outer(measured, ref, TABLE2_KEYS)
    out["n"] = out["n"].fillna(0).astype(int)
    out["setting"] = out["setting"].fillna("")
    # The paper's LL energy is itself an estimate, so it is compared with our estimate, not our meter.
    paper_estimated = out["method"].isin(eb_all_low_precision())
    out["energy_paper_kind"] = np.where(out["energy_kj_paper"].isna(), "", np.where(paper_estimated, "estimated", "measured"))
    out["acc_ratio"] = _ratio(out["acc_mean"], out["acc_paper"])
    out["energy_ratio"] = _ratio(out["energy_kj_mean"], out["energy_kj_paper"]).where(~paper_estimated)
    out["est_energy_ratio"] = _ratio(out["est_energy_kj_mean"], out["energy_kj_paper"]).where(paper_estimated)
    out["flops_ratio"] = _ratio(out["flops_p_mean"], out["flops_p_paper"])
    order = {m: i for i, m in enumerate(method_order())}
    out["_order"] = out["method"].map(order).fillna(len(order))
    out = out.sort_values(["model", "dataset", "pruning_ratio", "_order", "method", "setting"]).drop(columns="_order")
    return out.reset_index(drop=True)


def other_cells(runs: pd.DataFrame, shown: pd.DataFrame) -> pd.DataFrame:
    """Table 2's view of the cells it leaves out: per cell its row key, n, runs, why, and how it differs
    from the table's cells of the same key (or, without one, from the other cells left out)."""
    left = table2_protocol(runs)[1]
    if left.empty:
        return pd.DataFrame(columns=TABLE2_KEYS + ["cell", "n", "run_ids", "why", "setting"])
    df = left.assign(dataset=left["dataset_name"], method=left["method_name"],
                     pruning_ratio=left["prune_ratio"].round(2))
    rows = []
    for (key, cell), x in df.groupby([df[TABLE2_KEYS].astype(str).agg("|".join, axis=1), "cell"], sort=True):
        first = x.iloc[0]
        rows.append({**{k: first[k] for k in TABLE2_KEYS}, "cell": cell, "n": len(x),
                     "run_ids": " ".join(sorted(x["run_id"])), "why": why_not_table2(first)})
    out = pd.DataFrame(rows)
    both = pd.concat([out, shown[shown["n"] > 0][TABLE2_KEYS + ["cell"]]], ignore_index=True)
    every = pd.concat([df, runs[runs["cell"].isin(set(both["cell"]))]], ignore_index=True)
    labels = cell_labels(both, every, TABLE2_KEYS)
    out["setting"] = labels.iloc[:len(out)].to_numpy()
    return out


def table2_improvement(t2: pd.DataFrame) -> pd.DataFrame:
    """The "EB Train Improv." row per (model, dataset, ratio) and context (the cells whose specs agree but
    for the method), from Table 2's cell means, beside the paper's.

    Energy: `energy_improv_x` uses the measured LL energy; `est_energy_improv_x` (rule bits) and
    `est_mac_energy_improv_x` (rule mac) bound the estimated one (the paper's kind), `est_fit_energy_improv_x`
    uses the paper-fit constant. Ratios with only unpruned runs (p = 0) have no row.
    """
    rows = []
    ranked = t2[(t2["n"] > 0) & ~t2["method"].isin(displays("reference"))]
    for (model, dataset, p, _), g in ranked.groupby(["model", "dataset", "pruning_ratio", "context"], sort=True):
        rows.append({"model": model, "dataset": dataset, "pruning_ratio": p, **_improvement_row(g)})
    cols = ["model", "dataset", "pruning_ratio", "acc_improv", "acc_basis", "energy_improv_x", "energy_basis",
            "est_energy_improv_x", "est_energy_basis", "est_mac_energy_improv_x", "est_fit_energy_improv_x",
            "flops_improv_x", "flops_basis", "n_methods", "setting", "run_ids"]
    measured_df = pd.DataFrame(rows, columns=cols)
    ref = paper.table2_improvement().rename(columns={
        "acc_improv": "acc_improv_paper", "energy_improv_x": "energy_improv_x_paper",
        "flops_improv_x": "flops_improv_x_paper", "note": "paper_note"})
    have = set(zip(measured_df["model"], measured_df["dataset"], measured_df["pruning_ratio"].round(2)))
    ref = ref.loc[np.array([k in have for k in zip(ref["model"], ref["dataset"], ref["pruning_ratio"])], dtype=bool)]
    return _outer(measured_df, ref, ["model", "dataset", "pruning_ratio"])


def _improvement_row(g: pd.DataFrame) -> dict:
    """One context's Improv. (every method of it one cell, so like is compared with like)."""
    acc = dict(zip(g["method"], g["acc_mean"]))
    flops = dict(zip(g["method"], g["flops_p_mean"]))
    measured = improvement(acc, dict(zip(g["method"], g["energy_kj_mean"])), flops)
    est = {}
    for col in ("est_energy_kj", "est_mac_energy_kj", "est_fit_energy_kj"):
        # Baselines stay measured; only the LL member takes its estimate, as the paper did.
        energy = dict(zip(g["method"], g["energy_kj_mean"]))
        energy.update({m: dict(zip(g["method"], g[f"{col}_mean"])).get(m, math.nan) for m in eb_all_low_precision()})
        est[col] = improvement(acc, energy, flops)
    return {"acc_improv": measured.acc, "acc_basis": measured.acc_basis,
            "energy_improv_x": measured.energy_x, "energy_basis": measured.energy_basis,
            "est_energy_improv_x": est["est_energy_kj"].energy_x, "est_energy_basis": est["est_energy_kj"].energy_basis,
            "est_mac_energy_improv_x": est["est_mac_energy_kj"].energy_x,
            "est_fit_energy_improv_x": est["est_fit_energy_kj"].energy_x,
            "flops_improv_x": measured.flops_x, "flops_basis": measured.flops_basis,
            "n_methods": int((g["n"] > 0).sum()), "setting": g["context_setting"].iloc[0],
            "run_ids": " ".join(sorted(" ".join(g["run_ids"]).split()))}


def context_labels(measured: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """Per row: how its Improv. context differs from the other contexts at the same setting and ratio."""
    specs = {c: {k: v for k, v in spec.items() if k not in CONTEXT_FREE}
             for c, spec in runs.groupby("cell")["cell_spec"].first().items()}
    rows = measured[~measured["method"].isin(displays("reference"))]
    members = {f"{ctx}|{p}": (specs[cell], f"{m}|{d}|{p}")
               for ctx, cell, m, d, p in zip(rows["context"], rows["cell"], rows["model"], rows["dataset"],
                                             rows["pruning_ratio"])}
    found = cells.labels({k: v[0] for k, v in members.items()}, {k: v[1] for k, v in members.items()})
    return pd.Series([found.get(f"{ctx}|{p}", "") for ctx, p in zip(measured["context"], measured["pruning_ratio"])],
                     index=measured.index)


# --- Tables 1 and 4 -----------------------------------------------------------------------------

ACC_METRICS = {"acc": "best_top1", "acc_final": "final_top1"}

def _fixed_draw_ff(runs: pd.DataFrame) -> pd.DataFrame:
    """EB Train (FF) runs at p = 0.5 with a ticket drawn at a chosen epoch (detector runs draw where they
    draw, so they cannot fill an epoch column)."""
    df = runs[runs["method_name"].eq(DEFAULT_EB) & runs["prune_ratio"].round(2).eq(TABLE1_RATIO)
              & runs["eb_draw_epoch"].notna() & ~runs["drawn_at_best"].fillna(False).astype(bool)]
    return df.assign(dataset=df["dataset_name"], draw_epoch_label=_draw_label(df))


def table1(runs: pd.DataFrame) -> pd.DataFrame:
    """Retrain accuracy per LR schedule of the search and draw epoch; the retrain keeps the standard
    schedule (initial LR 0.1; larger ones are Table 4's)."""
    df = _fixed_draw_ff(runs)
    df = df[np.isclose(df["lr"].astype(float), STANDARD_LR)]
    df = df.assign(lr_schedule=[lr_schedule_label(lr, m, g) for lr, m, g
                                in zip(df["search_lr"], df["search_lr_milestones"], df["lr_gamma"])])
    df = df.rename(columns={"draw_epoch_label": "draw"})
    keys = ["model", "dataset", "lr_schedule", "draw"]
    measured = summarize(df, keys, ACC_METRICS)
    measured["setting"] = cell_labels(measured, df, keys) if len(measured) else ""
    measured = measured.rename(columns={"draw": "draw_epoch"})
    ref = _with_settings(paper.table1(), measured).rename(columns={"retrain_acc": "acc_paper", "note": "paper_note"})
    return _accuracy_table(measured, ref, ["model", "dataset", "lr_schedule", "draw_epoch"])


def table4(runs: pd.DataFrame) -> pd.DataFrame:
    """Retrain accuracy per initial LR and draw epoch, with the standard decays (/10 at 50% and 75% of the
    epochs) for the search and the retrain alike."""
    df = _fixed_draw_ff(runs)
    standard = [tuple(m) == (round(e * 0.5), round(e * 0.75)) and math.isclose(g, 0.1) and not own
                for m, e, g, own in zip(df["lr_milestones"], df["epochs"], df["lr_gamma"], df["search_schedule_own"])]
    df = df.loc[np.array(standard, dtype=bool)]
    df = df.rename(columns={"draw_epoch_label": "draw", "lr": "initial_lr"})
    keys = ["model", "dataset", "initial_lr", "draw"]
    measured = summarize(df, keys, ACC_METRICS)
    measured["setting"] = cell_labels(measured, df, keys) if len(measured) else ""
    measured = measured.rename(columns={"draw": "draw_epoch"})
    ref = _with_settings(paper.table4(), measured).rename(columns={"retrain_acc": "acc_paper", "note": "paper_note"})
    return _accuracy_table(measured, ref, ["model", "dataset", "initial_lr", "draw_epoch"])


def _accuracy_table(measured: pd.DataFrame, ref: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = _outer(measured, ref, keys)
    out["n"] = out["n"].fillna(0).astype(int)
    out["setting"] = out["setting"].fillna("")
    out["acc_ratio"] = _ratio(out["acc_mean"], out["acc_paper"])
    out["_final"] = out["draw_epoch"].eq("final")
    out["_epoch"] = pd.to_numeric(out["draw_epoch"], errors="coerce")
    order = keys[:-1] + ["_final", "_epoch", "setting"]
    return out.sort_values(order).drop(columns=["_final", "_epoch"]).reset_index(drop=True)


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
    measured["setting"] = cell_labels(measured, df, TABLE2_KEYS) if len(measured) else ""
    ref = _with_settings(paper.table3(), measured).rename(columns={
        "top1_acc": "top1_paper", "top5_acc": "top5_paper", "top1_improv": "top1_improv_paper",
        "top5_improv": "top5_improv_paper", "total_training_flops_p": "flops_p_paper",
        "total_training_energy_mj": "energy_mj_paper", "note": "paper_note"})
    out = _outer(measured, ref, ["model", "dataset", "method", "pruning_ratio"])
    out["n"] = out["n"].fillna(0).astype(int)
    out["setting"] = out["setting"].fillna("")
    unpruned_rows = out["method"].isin([labels[d] for d in displays("reference") if d in labels])
    # Δ vs the unpruned cell of the same context (specs equal but for method and ratio): like with like
    unpruned = out[unpruned_rows & out["context"].notna()].drop_duplicates("context").set_index("context")
    for k in ("top1", "top5"):
        out[f"{k}_improv"] = out[f"{k}_mean"] - out["context"].map(unpruned[f"{k}_mean"])
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
