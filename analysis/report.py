"""`ebt report`: every figure and table from the run records, and REPORT.md that shows them all."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis import markdown, power_modes, tables
from analysis.energy_estimate import DEFAULT, RULES
from analysis.figures import ALL_FIGURES, TITLES, FigureResult
from analysis.meter_gap import gap_table
from analysis.output import save_figure, write_csv, write_text
from analysis.records import (
    NO_TICKET,
    TOO_LATE,
    load_records,
    trusted_runs,
    usable_runs,
)
from experiments import events as ev
from experiments import paths

log = logging.getLogger(__name__)

MAX_FLAGGED_LISTED = 50
RUN_INDEX_COLUMNS = ["run_id", "status", "eb_flag", "created", "model", "dataset_name", "method_name", "prune_ratio",
                     "seed", "draw_epoch", "best_top1", "final_top1", "energy_kj", "energy_unc_kj", "energy_scope",
                     "est_energy_kj", "est_mac_energy_kj", "energy_source", "flops_p", "seconds", "resumed", "error"]
CONVENTIONS = (
    "Conventions: **top-1 best** is the official metric (the best epoch's top-1, as the official code "
    "reports); **final** is the last epoch's, shown beside it. Energy cells are mean ± u, u = sqrt(s² + ū²): "
    "s the sample std over runs (0 for one run), ū the mean of the runs' own `energy_uncertainty_j` (averaged, "
    "not added in quadrature: the meter's accuracy class, its largest part, is shared by the runs); a `*` marks "
    "a ± that is the spread alone (records without their own uncertainty). The `scope` column says what a "
    "measured joule covers (module, board, wall, gpu, package); numbers of different scope are not comparable, "
    "and the paper measured its TX2 with an external power meter. Estimated energies name their rule: "
    + "; ".join(f"`{r.name}`: {r.text}" for r in RULES.values()) + f". The default is `{DEFAULT.name}`.")


@dataclass
class Report:
    out_dir: Path
    n_records: int
    n_used: int
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)


@dataclass
class _Table:
    name: str
    title: str
    data: pd.DataFrame
    text: str
    backing: str


def build_report(runs: str, out_dir: Path, include_partial: bool = False,
                 max_slowdown: float = power_modes.DEFAULT_MAX_SLOWDOWN) -> Report:
    """Every figure and table of the records matching `runs` (a glob), written under `out_dir`;
    `max_slowdown` bounds the power-mode table's least-energy-within-a-slowdown choice."""
    out_dir = Path(out_dir)
    all_runs = load_records(runs)
    usable = usable_runs(all_runs, include_partial)
    used = trusted_runs(usable)
    log.info("%d records, %d used (%s; %d with an Early-Bird flag left out)", len(all_runs), len(used),
             "ok + partial" if include_partial else "ok only", len(usable) - len(used))
    fig_dir, tab_dir = out_dir / "figures", out_dir / "tables"

    figures = [make(used) for make in ALL_FIGURES]
    for f in figures:
        stem = fig_dir / f.name
        if f.fig is None:
            # A figure that has no data now must not survive from an older report.
            for old in (stem.with_suffix(".png"), stem.with_suffix(".pdf")):
                old.unlink(missing_ok=True)
        else:
            save_figure(f.fig, stem)

    built = _tables(used, usable) + _power_mode_tables(used, max_slowdown)
    for t in built:
        write_csv(tab_dir / f"{t.name}.csv", t.data)
        write_text(tab_dir / f"{t.name}.md", f"# {t.title}\n\n{t.backing}\n\n{t.text}")
    write_csv(tab_dir / "runs.csv", all_runs.reindex(columns=RUN_INDEX_COLUMNS))

    write_text(out_dir / paths.REPORT, _report_md(all_runs, used, include_partial, runs, figures, built))
    return Report(out_dir, len(all_runs), len(used), [f.name for f in figures if f.fig is not None],
                  [t.name for t in built])


def _backing(df: pd.DataFrame) -> str:
    if df.empty or "n" not in df:
        return "No runs back this table yet."
    n = df["n"].fillna(0)
    filled = n[n > 0]
    if filled.empty:
        return f"No runs back this table yet ({len(df)} paper rows for comparison)."
    return (f"{_runs(int(filled.sum()))} back {len(filled)} of {len(df)} rows "
            f"({_span(int(filled.min()), int(filled.max()))} per row; `n` in each row, and `(n=k)` in a cell "
            f"when fewer of that row's runs had that value); {int((n == 0).sum())} rows have only the paper's value.")


def _left_out(usable: pd.DataFrame, methods: pd.Series) -> str:
    """The runs of these methods that a table leaves out for their Early-Bird flag, said under it."""
    flagged = usable[usable["eb_flag"].isin([NO_TICKET, TOO_LATE]) & usable["method_name"].isin(set(methods))]
    if flagged.empty:
        return ""
    counts = flagged["eb_flag"].value_counts()
    return ("\n\nLeft out (not averaged in): " + ", ".join(f"{n} run(s) with {flag}" for flag, n in counts.items())
            + ": " + ", ".join(f"`{r}`" for r in flagged["run_id"].head(10)) + (" …" if len(flagged) > 10 else "")
            + ". They are listed under Flagged runs.")


def _tables(used: pd.DataFrame, usable: pd.DataFrame) -> list[_Table]:
    t2 = tables.table2(used)
    imp = tables.table2_improvement(t2)
    t1, t3, t4 = tables.table1(used), tables.table3(used), tables.table4(used)
    gaps = gap_table(used)
    out = [
        _Table("table2_methods", "Table 2: accuracy, energy and FLOPs per method and pruning ratio", t2,
               markdown.table2(t2), _backing(t2)),
        _Table("table2_improvement", "Table 2: EB Train Improv. (the paper's rule on the measured means)", imp,
               markdown.table2_improvement(imp),
               "Each row is computed from the Table 2 means of that setting and ratio (`methods` = how many "
               "methods had runs; `basis` names the members the rule picked). Energy: baselines measured, LL "
               "measured or estimated (the paper's LL energy is an estimate)."),
        _Table("table1_lr_schedule", "Table 1: retrain accuracy per LR schedule and draw epoch (p = 0.5)", t1,
               markdown.accuracy_table(t1, "lr_schedule", "LR schedule"), _backing(t1)),
        _Table("table3_imagenet", "Table 3: ImageNet", t3, markdown.table3(t3), _backing(t3)),
        _Table("table4_large_lr", "Table 4: retrain accuracy per initial LR and draw epoch (p = 0.5)", t4,
               markdown.accuracy_table(t4, "initial_lr", "initial LR"), _backing(t4)),
    ]
    for t in out:
        if "method" in t.data:
            t.backing += _left_out(usable, t.data["method"])
    if len(gaps):
        out.append(_Table("meter_gap", "Per-phase gap between the primary meter and each secondary meter", gaps,
                          markdown.gap_table(gaps),
                          f"{gaps['run_id'].nunique()} run(s) with a second meter; gap = secondary - primary over "
                          "the same phase window, its ± the two uncertainties in quadrature (independent meters)."))
    return out


def _power_mode_tables(used: pd.DataFrame, max_slowdown: float) -> list[_Table]:
    """The power-mode tables, when some cell was run in more than one mode."""
    table = power_modes.mode_table(power_modes.mode_runs(used))
    if table.empty or table.groupby("family")["mode"].nunique().max() < 2:
        return []
    best, rank = power_modes.optimal_modes(table, max_slowdown), power_modes.ranking(table)
    back = (f"{int(table['n'].sum())} runs in {len(table)} cells (same spec but seed), "
            f"{table['mode'].nunique()} modes; the mode is the one the board held (record `conditions`).")
    return [
        _Table("power_modes", "Energy, time and accuracy per power mode", table.drop(columns="family"),
               power_modes.markdown_mode_table(table), back),
        _Table("power_mode_optimal", "Energy-optimal power mode per method", best.drop(columns="family"),
               power_modes.markdown_optimal(best),
               f"Zeus-style choices among each method's modes: least kJ, least time, and least kJ within "
               f"{max_slowdown:g}x the fastest mode's time (`ebt report --max-slowdown`)."),
        _Table("power_mode_ranking", "Does the methods' ranking by energy hold in every mode?", rank,
               power_modes.markdown_ranking(rank),
               "Methods measured in every mode of their model and dataset, least kJ first."),
    ]


def _report_md(all_runs: pd.DataFrame, used: pd.DataFrame, include_partial: bool, pattern: str,
               figures: list[FigureResult], built: list[_Table]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Early-Bird energy suite: report", "", f"Generated {now} from `{pattern}`.", ""]
    if all_runs.empty:
        lines += [("**No run records found.** Run `ebt run CONFIG` first; every figure and table below is "
                  "empty until records exist."), ""]
    counts = all_runs["status"].value_counts().to_dict() if len(all_runs) else {}
    lines += [(f"Records: {len(all_runs)} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'none'}). "
              f"Used in figures and tables: {len(used)} ({'ok and partial' if include_partial else 'ok only'}; "
              "failed and unreadable runs never; runs whose Early-Bird search found no ticket, or found it late "
              "(after the last lr decay), are left out and listed below). Energy: measured and estimated values are kept in "
              "separate columns and marked; missing values show as —, never as 0."), "", CONVENTIONS, ""]
    flagged = all_runs[~all_runs["status"].eq(ev.OK) | all_runs["eb_flag"].isin([NO_TICKET, TOO_LATE])]
    if len(flagged):
        lines += ["## Flagged runs", "", *[_flag_line(r)
                                          for r in flagged.head(MAX_FLAGGED_LISTED).itertuples()]]
        if len(flagged) > MAX_FLAGGED_LISTED:
            lines.append(f"- … and {len(flagged) - MAX_FLAGGED_LISTED} more (see tables/runs.csv)")
        lines.append("")
    lines += ["## Figures", ""]
    for f in figures:
        lines += [f"### {TITLES[f.name]}", ""]
        if f.fig is None:
            lines += ["No runs with the data this figure needs.", ""]
            continue
        lines += [f"![{f.name}](figures/{f.name}.png) ([PDF](figures/{f.name}.pdf))", "", f.caption, "",
                  f"Backed by {_runs(f.n_runs)}" + _points_line(f) + ".", ""]
    lines += ["## Tables", "", "Full precision in `tables/*.csv`; the run index is `tables/runs.csv`.", ""]
    for t in built:
        lines += [f"### {t.title}", "", t.backing, ""]
        lines += [t.text if len(t.data) else "No runs for this table yet.", ""]
    return "\n".join(lines)


def _flag_line(r) -> str:
    """`run`: **why it is flagged** (and the runner's own note or error)."""
    if r.status != ev.OK:
        return f"- `{r.run_id}`: **{r.status}**" + (f" ({r.error})" if r.error else "")
    note = f" ({r.eb_note})" if isinstance(r.eb_note, str) and r.eb_note else ""
    return f"- `{r.run_id}`: **{r.status}, {r.eb_flag}: left out of tables and figures**{note}"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _span(lo: int, hi: int) -> str:
    return _runs(lo) if lo == hi else f"{lo}-{hi} runs"


def _points_line(f: FigureResult) -> str:
    if "n" in f.data and len(f.data):
        n = pd.to_numeric(f.data["n"], errors="coerce").dropna()
        if len(n):
            return f"; {len(f.data)} plotted points (or dense lines), each the mean of {_span(int(n.min()), int(n.max()))}"
    return f"; {len(f.data)} plotted panels/phases"
