"""`ebt report`: every figure and table from the run records, and REPORT.md that shows them all."""
from __future__ import annotations

import functools

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis import agreement, figures, markdown, paper, power_modes, sharing, tables
from analysis.energy_estimate import BITS, MAC, PAPER_FIT, RULES, fit_residual
from analysis.figures import ALL_FIGURES, TITLES, Figure, FigureResult
from analysis.meter_gap import gap_table
from analysis.output import FORMATS, FigureWriter, save_figure, write_csv, write_text
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
RUN_INDEX_COLUMNS = ["run_id", "cell", "status", "eb_flag", "created", "model", "dataset_name", "method_name", "prune_ratio",
                     "seed", "draw_epoch", "best_top1", "final_top1", "energy_kj", "energy_unc_kj", "energy_scope",
                     "est_energy_kj", "est_mac_energy_kj", "est_fit_energy_kj", "energy_valid",
                     "energy_invalid_reasons", "best_model", "final_model", "board", "jetpack", "energy_source", "flops_p", "seconds", "resumed", "error"]
CONVENTIONS = (
    "Conventions: every row of every table, and every figure point, is one **cell**: runs whose resolved specs "
    "are identical but for the seed (and where the meters hung), on the same board; nothing is averaged across "
    "cells. Where cells share a table row's key, each has its own row, and `setting` says how they differ; "
    "`cell` names it and `tables/*.csv` list its `run_ids`. **top-1 best** is the official metric (the best "
    "epoch's top-1, as the official code reports); **final** is the last evaluation, shown beside it; an LL "
    "run's best is its live 8-bit model and its final the FP32 SWA model (each named in brackets). "
    "Energy cells are mean ± u, u = sqrt(s² + ū²): "
    "s the sample std over runs (0 for one run), ū the mean of the runs' own `energy_uncertainty_j` (averaged, "
    "not added in quadrature: the meter's accuracy class, its largest part, is shared by the runs); a `*` marks "
    "a ± that is the spread alone (records without their own uncertainty). A cell with a run whose record calls "
    "its energy invalid shows `invalid` and the reason instead of a mean. The `scope` column says what a "
    "measured joule covers (module, board, wall, gpu, package); numbers of different scope are not comparable, "
    "and the paper measured its TX2 with an external power meter. LL energy is estimated (8-bit is emulated in "
    "FP32), shown as the interval [mac, bits] between two rules from first principles, with the paper-fit "
    "constant beside it: " + "; ".join(f"`{r.name}`: {r.text}" for r in RULES.values()) + ".")


def paper_rule_lines() -> list[str]:
    """How the paper's own 12 LL cells sit against the rules, applied to its LF cells."""
    ratios = [ll / lf for _, lf, ll in paper.ll_lf_cells()]
    lo, hi = fit_residual(ratios, 8 / 32)
    flo, fhi = fit_residual(ratios, PAPER_FIT.factor)
    mlo, mhi = fit_residual(ratios, MAC.factor)
    return [f"The paper's 12 LL energies against its LF energies (LL/LF = {min(ratios):.4f}-{max(ratios):.4f}): "
            f"`{BITS.name}` (8/32; the paper gives no idle power, so all of LF is scaled) lands {lo:+.1%} to "
            f"{hi:+.1%} from them; `{MAC.name}` {mlo:+.1%} to {mhi:+.1%}. `{PAPER_FIT.name}` ({PAPER_FIT.factor:.4f}) "
            f"is fitted to these very ratios: its residual, {flo:+.1%} to {fhi:+.1%}, holds by construction and "
            "validates nothing."]


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


def build_report(runs: str, out_dir: Path, include_partial: bool = False, exclude_flagged: bool = False,
                 max_slowdown: float = power_modes.DEFAULT_MAX_SLOWDOWN) -> Report:
    """Every figure and table of the records matching `runs` (a glob), written under `out_dir`. Runs with an
    Early-Bird flag (no ticket, a late one) count in their cells unless `exclude_flagged`; `max_slowdown`
    bounds the power-mode table's least-energy-within-a-slowdown choice."""
    out_dir = Path(out_dir)
    fig_dir, tab_dir = out_dir / "figures", out_dir / "tables"
    # The figures are drawn in the background, by a process that loads matplotlib while the records load
    # here; the tables are made meanwhile, and the page that links the figures is written once they all are.
    with FigureWriter(figures.prepare) as writer:
        all_runs = load_records(runs)
        usable = usable_runs(all_runs, include_partial)
        used = trusted_runs(usable) if exclude_flagged else usable
        log.info("%d records, %d used (%s; %d with an Early-Bird flag %s)", len(all_runs), len(used),
                 "ok + partial" if include_partial else "ok only", int(usable["eb_flag"].notna().sum()),
                 "left out" if exclude_flagged else "counted and marked")
        writer.draw([functools.partial(_figure, f, used, fig_dir) for f in ALL_FIGURES])
        built = (_tables(used, usable, exclude_flagged, agreement.load_all(Path(paths.calibrations(out_dir))))
                 + _power_mode_tables(used, max_slowdown) + _spending_tables(all_runs))
        for t in built:
            write_csv(tab_dir / f"{t.name}.csv", t.data)
            write_text(tab_dir / f"{t.name}.md", f"# {t.title}\n\n{t.backing}\n\n{t.text}")
        write_csv(tab_dir / "runs.csv", all_runs.reindex(columns=RUN_INDEX_COLUMNS))

    view = _View(include_partial, exclude_flagged, runs)
    write_text(out_dir / paths.REPORT, _report_md(all_runs, used, view, writer.results, built))
    return Report(out_dir, len(all_runs), len(used), [f.name for f in writer.results if f.drawn],
                  [t.name for t in built])


def _figure(figure: Figure, used: pd.DataFrame, fig_dir: Path) -> FigureResult:
    """Build the figure and write it with its data beside it (a figure with no data now must not survive
    from an older report); what the page says of it, without the drawing."""
    f = figure.build(used)
    stem = fig_dir / f.name
    if f.fig is None:
        for old in (stem.with_suffix(f".{fmt}") for fmt in FORMATS + ("csv",)):
            old.unlink(missing_ok=True)
        return f
    write_csv(stem.with_suffix(".csv"), f.data)
    save_figure(f.fig, stem)
    return f.described()


@dataclass(frozen=True)
class _View:
    include_partial: bool
    exclude_flagged: bool
    pattern: str


def _backing(df: pd.DataFrame) -> str:
    if df.empty or "n" not in df:
        return "No runs back this table yet."
    n = df["n"].fillna(0)
    filled = n[n > 0]
    if filled.empty:
        return f"No runs back this table yet ({len(df)} paper rows for comparison)."
    return (f"{_runs(int(filled.sum()))} back {len(filled)} of {len(df)} rows, one cell each "
            f"({_span(int(filled.min()), int(filled.max()))} per row: `n` in each row, with its flagged runs, and "
            f"`(n=k)` in a cell when fewer of that row's runs had that value; the runs are `run_ids` in the CSV); "
            f"{int((n == 0).sum())} rows have only the paper's value.")


def _flag_note(usable: pd.DataFrame, methods: pd.Series, exclude_flagged: bool) -> str:
    """What a table did with the runs of its methods that carry an Early-Bird flag, said under it."""
    flagged = usable[usable["eb_flag"].isin([NO_TICKET, TOO_LATE]) & usable["method_name"].isin(set(methods))]
    if flagged.empty:
        return ""
    counts = ", ".join(f"{n} run(s) with {flag}" for flag, n in flagged["eb_flag"].value_counts().items())
    if exclude_flagged:
        return (f"\n\nLeft out (--exclude-flagged): {counts}: "
                + ", ".join(f"`{r}`" for r in flagged["run_id"].head(10)) + (" …" if len(flagged) > 10 else "")
                + ". They are listed under Flagged runs.")
    return (f"\n\nCounted in their cells and marked in `n` ({counts}): a late or missing ticket is EB Train's "
            "real outcome and cost. `ebt report --exclude-flagged` shows the tables without them.")


def _tables(used: pd.DataFrame, usable: pd.DataFrame, exclude_flagged: bool,
            calibrations: list[dict] | None = None) -> list[_Table]:
    t2 = tables.table2(used)
    others = tables.other_cells(used, t2)
    imp = tables.table2_improvement(t2)
    t1, t3, t4 = tables.table1(used), tables.table3(used), tables.table4(used)
    gaps = gap_table(used, calibrations)
    out = [
        _Table("table2_methods", "Table 2: accuracy, energy and FLOPs per method and pruning ratio", t2,
               markdown.table2(t2) + markdown.other_cells(others), _backing(t2)),
        _Table("table2_improvement", "Table 2: EB Train Improv. (the paper's rule on the measured means)", imp,
               markdown.table2_improvement(imp),
               "Each row compares the Table 2 cells of one setting, ratio and context: cells whose specs are "
               "identical but for the method, so like is compared with like (`setting` says how a context "
               "differs from the others at that ratio; `methods` = how many methods had runs; `runs` = the runs "
               "behind the row, `run_ids` in the CSV; `basis` names the members the rule picked). Energy: "
               "baselines measured, LL measured or estimated (the paper's LL energy is an estimate)."),
        _Table("table1_lr_schedule", "Table 1: retrain accuracy per LR schedule and draw epoch (p = 0.5)", t1,
               markdown.accuracy_table(t1, "lr_schedule", "LR schedule"), _backing(t1)),
        _Table("table3_imagenet", "Table 3: ImageNet", t3, markdown.table3(t3), _backing(t3)),
        _Table("table4_large_lr", "Table 4: retrain accuracy per initial LR and draw epoch (p = 0.5)", t4,
               markdown.accuracy_table(t4, "initial_lr", "initial LR"), _backing(t4)),
    ]
    if len(others):
        out.append(_Table("table2_other_cells", "Cells left out of Table 2 (other experiments)", others,
                          markdown.other_cells(others), f"{len(others)} cell(s), {int(others['n'].sum())} run(s)."))
    for t in out:
        if "method" in t.data:
            t.backing += _flag_note(usable, t.data["method"], exclude_flagged)
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


def _spending_tables(all_runs: pd.DataFrame) -> list[_Table]:
    """Billed per run vs really spent, when some run branched from a shared trunk (`analysis.sharing`)."""
    spending = sharing.sweep_spending(all_runs)
    if spending.empty or spending["trunk_epochs"].sum() == 0:
        return []
    return [_Table("sweep_spending", "What the runs bill and what was spent (shared trunks counted once)", spending,
                   sharing.markdown_table(spending), sharing.BACKING)]


def _report_md(all_runs: pd.DataFrame, used: pd.DataFrame, view: _View, figures: list[FigureResult],
               built: list[_Table]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Early-Bird energy suite: report", "", f"Generated {now} from `{view.pattern}`.", ""]
    counts = all_runs["status"].value_counts().to_dict() if len(all_runs) else {}
    flag_rule = ("left out (`--exclude-flagged`) and listed below" if view.exclude_flagged
                 else "counted in their cells, marked in `n` and listed below")
    lines += [(f"Records: {len(all_runs)} ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items())) or 'none'}). "
              f"Used in figures and tables: {len(used)} ({'ok and partial' if view.include_partial else 'ok only'}; "
              "failed and unreadable runs never; runs whose Early-Bird search found no ticket, or found it late "
              f"(at or after the last lr decay), are {flag_rule}). Energy: measured and estimated values are kept "
              "in separate columns and marked; missing values show as —, never as 0."), "", CONVENTIONS, "",
              *paper_rule_lines(), ""]
    flagged = all_runs[~all_runs["status"].eq(ev.OK) | all_runs["eb_flag"].isin([NO_TICKET, TOO_LATE])]
    if len(flagged):
        lines += ["## Flagged runs", "", *[_flag_line(r, view.exclude_flagged)
                                          for r in flagged.head(MAX_FLAGGED_LISTED).itertuples()]]
        if len(flagged) > MAX_FLAGGED_LISTED:
            lines.append(f"- … and {len(flagged) - MAX_FLAGGED_LISTED} more (see tables/runs.csv)")
        lines.append("")
    lines += ["## Figures", ""]
    for f in figures:
        lines += [f"### {TITLES[f.name]}", ""]
        if not f.drawn:
            lines += ["No runs with the data this figure needs.", ""]
            continue
        lines += [f"![{f.name}](figures/{f.name}.png) ([PDF](figures/{f.name}.pdf), data: "
                  f"[CSV](figures/{f.name}.csv))", "", f.caption, "",
                  f"Backed by {_runs(f.n_runs)}" + _points_line(f) + ".", ""]
    lines += ["## Tables", "", "Full precision in `tables/*.csv`; the run index is `tables/runs.csv`.", ""]
    for t in built:
        lines += [f"### {t.title}", "", t.backing, ""]
        lines += [t.text if len(t.data) else "No runs for this table yet.", ""]
    return "\n".join(lines)


def _flag_line(r, excluded: bool) -> str:
    """`run`: **why it is flagged** (and the runner's own note or error)."""
    if r.status != ev.OK:
        return f"- `{r.run_id}`: **{r.status}**" + (f" ({r.error})" if r.error else "")
    note = f" ({r.eb_note})" if isinstance(r.eb_note, str) and r.eb_note else ""
    where = "left out of tables and figures" if excluded else f"counted in its cell `{r.cell}`"
    return f"- `{r.run_id}`: **{r.status}, {r.eb_flag}: {where}**{note}"


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _span(lo: int, hi: int) -> str:
    return _runs(lo) if lo == hi else f"{lo}-{hi} runs"


def _points_line(f: FigureResult) -> str:
    if "n" in f.data and len(f.data):
        n = pd.to_numeric(f.data["n"], errors="coerce").dropna()
        if len(n):
            return (f"; {len(f.data)} plotted points (or dense lines), each one cell, the mean of "
                    f"{_span(int(n.min()), int(n.max()))} (`run_ids` in the figure's CSV)")
    return f"; {len(f.data)} plotted panels/phases"
