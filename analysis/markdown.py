"""Markdown views of the tables: "mean ± std (n=k)" cells, "—" for missing, estimates labelled with their rule,
one row per cell with its `setting` and its flagged runs in `n` ("3, 1 late").

Accuracy columns: "Top-1 best" is the official metric (the best epoch's top-1), "final" the last epoch's.
Energy cells: "mean ± u", u combining the run-to-run spread and the runs' own uncertainty
(`analysis.tables`); a "*" marks a cell whose ± is the spread alone (a run without its own uncertainty).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from analysis.energy_estimate import BITS, MAC, PAPER_FIT
from analysis.naming import eb_all_low_precision

MISSING = "—"
LF_AT_FP32 = ("Only LL gets an estimate: LF's 8-bit search is billed at its measured (FP32-emulated) energy, "
              "as the paper bills LF at FP32 (its LF/FF energy ratios are 0.85-1.01).")


def _num(v) -> float | None:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _fmt(v: float, digits: int | None) -> str:
    """`digits` decimals, or 4 significant digits when None (FLOPs span 1e-3 P on digits to 1e3 P on ImageNet)."""
    return f"{v:.4g}" if digits is None else f"{v:.{digits}f}"


def value(v, digits: int | None = 2, suffix: str = "") -> str:
    v = _num(v)
    return MISSING if v is None else _fmt(v, digits) + suffix


def stat(mean, std, n, row_n=None, digits: int | None = 2, suffix: str = "") -> str:
    """mean ± std; the cell's own n is shown when it differs from its row's (e.g. fewer runs had a meter)."""
    mean, std, n = _num(mean), _num(std), _num(n)
    if mean is None:
        return MISSING
    text = _fmt(mean, digits) + (f" ± {_fmt(std, digits)}" if std is not None else "")
    if n is not None and (row_n is None or int(n) != int(row_n)):
        text += f" (n={int(n)})"
    return text + suffix


def render(header: Sequence[str], rows: list[Sequence[str]]) -> str:
    def esc(cell) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _notes(df: pd.DataFrame, label_cols: Sequence[str]) -> str:
    """The transcription's caveats for the paper cells shown, once per (label, note)."""
    if "paper_note" not in df:
        return ""
    seen: dict = {}
    for _, r in df[df["paper_note"].astype(bool)].iterrows():
        label = " ".join(value(r[c], 2) if c == "pruning_ratio" else str(r[c]) for c in label_cols)
        seen.setdefault((label, r["paper_note"]), None)
    lines = [f"- {label}: {note}" for label, note in seen]
    return ("\nPaper-cell notes (from the transcription):\n\n" + "\n".join(lines) + "\n") if lines else ""


def energy(r, name: str, digits: int = 1, suffix: str = "") -> str:
    """mean ± combined uncertainty of energy metric `name` in row `r`; '*' when the ± is the spread only."""
    mean, n = r.get(f"{name}_mean"), r.get(f"{name}_n")
    u = r.get(f"{name}_u", r.get(f"{name}_std"))
    text = stat(mean, u, n, r.get("n"), digits)
    if text != MISSING and r.get(f"{name}_u_meter") is False:
        text += "*"
    return text + (suffix if text != MISSING else "")


def _text(v) -> str:
    return v if isinstance(v, str) else ""


def runs_cell(r) -> str:
    """n, and the flagged runs among them: '3, 1 late'."""
    flags = r.get("flags")
    return f"{int(r.n)}" + (f", {flags}" if isinstance(flags, str) and flags else "")


def ticket(r) -> str:
    """The cell's ticket epochs: mean (min-max) over its EB draws."""
    mean, lo, hi = _num(r.get("ticket_epoch_mean")), _num(r.get("ticket_epoch_min")), _num(r.get("ticket_epoch_max"))
    if mean is None:
        return MISSING
    return f"{mean:.1f}" + ("" if lo == hi else f" ({lo:g}-{hi:g})")


def accuracy(r, name: str, model_col: str) -> str:
    """mean ± std of an accuracy, naming the model it evaluates when that is not plain FP32."""
    text = stat(r.get(f"{name}_mean"), r.get(f"{name}_std"), r.get(f"{name}_n"), r.get("n"))
    model = r.get(model_col)
    return text + (f" [{model}]" if isinstance(model, str) and model and model != "fp32" and text != MISSING else "")


def measured_energy(r, name: str, digits: int = 1) -> str:
    invalid = r.get("energy_invalid")
    return f"invalid ({invalid})" if isinstance(invalid, str) and invalid else energy(r, name, digits)


def ll_interval(r) -> str:
    """The LL estimate as [mac, bits] kJ (bits needs an idle baseline; without one it is —)."""
    if r.method not in eb_all_low_precision() or _num(r.get("est_mac_energy_kj_mean")) is None:
        return MISSING
    if isinstance(r.get("energy_invalid"), str) and r.get("energy_invalid"):
        return "invalid"
    return f"[{value(r.est_mac_energy_kj_mean, 1)}, {value(r.est_energy_kj_mean, 1)}]"


def table2(t2: pd.DataFrame) -> str:
    header = ["Model", "Dataset", "p", "Method", "setting", "cell", "n", "ticket epoch", "Top-1 best (%)", "final",
              "paper", "×", "Energy kJ (measured)", "scope", f"LL est. kJ [{MAC.name}, {BITS.name}]",
              f"({PAPER_FIT.name})", "paper kJ", f"× ({BITS.name})", "PFLOPs", "paper", "×"]
    rows = []
    for _, r in t2.iterrows():
        est = r.energy_paper_kind == "estimated"
        ll = r.method in eb_all_low_precision()
        rows.append([
            r.model, r.dataset, value(r.pruning_ratio, 2), r.method, r.get("setting") or "",
            r.get("cell") if isinstance(r.get("cell"), str) else "", runs_cell(r), ticket(r),
            accuracy(r, "acc", "best_model"), accuracy(r, "acc_final", "final_model"),
            value(r.acc_paper), value(r.acc_ratio, 3),
            measured_energy(r, "energy_kj"), _text(r.get("energy_scope")), ll_interval(r),
            value(r.est_fit_energy_kj_mean, 1) if ll else MISSING,
            value(r.energy_kj_paper, 1, " (est.)" if est else ""),
            value(r.est_energy_ratio if est else r.energy_ratio, 2, f" (est., {BITS.name})" if est else ""),
            stat(r.flops_p_mean, r.flops_p_std, r.flops_p_n, r.n, None), value(r.flops_p_paper, None),
            value(r.flops_ratio, 3),
        ])
    return (render(header, rows) + "\n" + LF_AT_FP32 + "\n"
            + _notes(t2, ["model", "dataset", "method", "pruning_ratio"]))


def other_cells(o: pd.DataFrame) -> str:
    """The cells Table 2 leaves out, each with why and how it differs."""
    if o.empty:
        return ""
    lines = [f"- {r.model} {r.dataset} p={value(r.pruning_ratio, 2)} {r.method}, cell `{r.cell}`"
             + (f" ({r.setting})" if r.setting else "") + f", n={int(r.n)}: {r.why}" for r in o.itertuples()]
    return ("\nNot in this table (another experiment, so not pooled with its rows):\n\n" + "\n".join(lines)
            + "\n")


def table2_improvement(imp: pd.DataFrame) -> str:
    """The "EB Train Improv." row per setting, ratio and context, by the paper's rule, beside the paper's."""
    rows = [[r.model, r.dataset, value(r.pruning_ratio, 2), r.get("setting") or "", int(r.n_methods),
             len(str(r.run_ids).split()) if isinstance(r.run_ids, str) else 0, value(r.acc_improv),
             value(r.acc_improv_paper), value(r.energy_improv_x, 2, "×"), _x_interval(r),
             value(r.est_fit_energy_improv_x, 2, "×"),
             value(r.energy_improv_x_paper, 1, "× (est.)"), value(r.flops_improv_x, 2, "×"),
             value(r.flops_improv_x_paper, 1, "×"),
             "; ".join(b for b in (r.acc_basis, r.energy_basis, r.est_energy_basis, r.flops_basis) if isinstance(b, str))]
            for _, r in imp.iterrows()]
    header = ["Model", "Dataset", "p", "setting", "methods", "runs", "Δ top-1 best", "paper", "energy (LL measured)",
              f"energy (LL est. [{BITS.name}, {MAC.name}])", f"({PAPER_FIT.name})", "paper", "FLOPs", "paper", "basis"]
    return render(header, rows) + _notes(imp, ["model", "dataset", "pruning_ratio"])


def _x_interval(r) -> str:
    lo, hi = _num(r.get("est_energy_improv_x")), _num(r.get("est_mac_energy_improv_x"))
    if hi is None:
        return MISSING
    return f"[{value(lo, 2, '×')}, {value(hi, 2, '×')}]"


def accuracy_table(t: pd.DataFrame, key: str, key_title: str) -> str:
    rows = [[r.model, r.dataset, r[key], r.draw_epoch, r.get("setting") or "", runs_cell(r),
             accuracy(r, "acc", "best_model"), accuracy(r, "acc_final", "final_model"), value(r.acc_paper),
             value(r.acc_ratio, 3)] for _, r in t.iterrows()]
    return render(["Model", "Dataset", key_title, "Draw epoch", "setting", "n", "Retrain top-1 best (%)", "final",
                   "paper", "×"], rows) + _notes(t, ["model", "dataset", key])


def table3(t: pd.DataFrame) -> str:
    rows = [[r.model, r.dataset, r.method, value(r.pruning_ratio, 2), r.get("setting") or "", runs_cell(r),
             stat(r.top1_mean, r.top1_std, r.top1_n, r.n), stat(r.top1_final_mean, r.top1_final_std, r.top1_final_n, r.n),
             value(r.top1_paper), value(r.top1_improv),
             value(r.top1_improv_paper), stat(r.top5_mean, r.top5_std, r.top5_n, r.n), value(r.top5_paper),
             stat(r.flops_p_mean, r.flops_p_std, r.flops_p_n, r.n, 1), value(r.flops_p_paper),
             measured_energy(r, "energy_mj", 2), _text(r.get("energy_scope")), energy(r, "est_energy_mj", 2),
             value(r.energy_mj_paper)] for _, r in t.iterrows()]
    return render(["Model", "Dataset", "Method", "p", "setting", "n", "Top-1 best", "final", "paper", "Δ vs unpruned", "paper",
                   "Top-5", "paper", "PFLOPs", "paper", "Energy MJ (measured)", "scope",
                   f"Energy MJ (est., rule {BITS.name})", "paper MJ"],
                  rows) + _notes(t, ["model", "dataset", "method", "pruning_ratio"])


def gap_table(g: pd.DataFrame) -> str:
    """Primary vs secondary meter per phase: J (± uncertainty) and mean W from each, and the gap."""
    rows = [[r.run_id, r.phase, f"{r.primary_scope or '?'} vs {r.secondary_scope or '?'}", r.secondary,
             _pm(r.primary_j, r.primary_unc_j), _pm(r.secondary_j, r.secondary_unc_j), _pm(r.gap_j, r.gap_unc_j),
             value(r.primary_w, 2), value(r.secondary_w, 2), value(r.gap_w, 2), value(r.measured_ratio, 3),
             _pm(r.agreed_ratio, r.agreed_ratio_unc, 3)] for _, r in g.iterrows()]
    return render(["Run", "Phase", "scopes (primary vs secondary)", "secondary meter", "primary J", "secondary J",
                   "gap J", "primary W", "secondary W", "gap W", "secondary/primary",
                   "agreed (ebt meters agree)"], rows)


def _pm(mean, unc, digits: int = 1) -> str:
    text = value(mean, digits)
    return text if text == MISSING or _num(unc) is None else f"{text} ± {_fmt(_num(unc), digits)}"
