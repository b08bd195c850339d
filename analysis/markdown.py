"""Markdown views of the tables: "mean ± std (n=k)" cells, "—" for missing, estimates labelled with their rule.

Accuracy columns: "Top-1 best" is the official metric (the best epoch's top-1), "final" the last epoch's.
Energy cells: "mean ± u", u combining the run-to-run spread and the runs' own uncertainty
(`analysis.tables`); a "*" marks a cell whose ± is the spread alone (a run without its own uncertainty).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from analysis.energy_estimate import DEFAULT, MAC

MISSING = "—"
DEFAULT_RULE, OTHER_RULE = DEFAULT.name, MAC.name


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


def table2(t2: pd.DataFrame) -> str:
    header = ["Model", "Dataset", "p", "Method", "n", "Top-1 best (%)", "final", "paper", "×",
              "Energy kJ (measured)", "scope", f"Energy kJ (est., rule {DEFAULT_RULE})", f"(rule {OTHER_RULE})",
              "paper kJ", "×", "PFLOPs", "paper", "×"]
    rows = []
    for _, r in t2.iterrows():
        est = r.energy_paper_kind == "estimated"
        rows.append([
            r.model, r.dataset, value(r.pruning_ratio, 2), r.method, int(r.n),
            stat(r.acc_mean, r.acc_std, r.acc_n, r.n), stat(r.acc_final_mean, r.acc_final_std, r.acc_final_n, r.n),
            value(r.acc_paper), value(r.acc_ratio, 3),
            energy(r, "energy_kj"), r.get("energy_scope") or "", energy(r, "est_energy_kj"),
            stat(r.est_mac_energy_kj_mean, r.est_mac_energy_kj_std, r.est_mac_energy_kj_n, r.n, 1),
            value(r.energy_kj_paper, 1, " (est.)" if est else ""),
            value(r.est_energy_ratio if est else r.energy_ratio, 2, f" (est., {DEFAULT_RULE})" if est else ""),
            stat(r.flops_p_mean, r.flops_p_std, r.flops_p_n, r.n, None), value(r.flops_p_paper, None),
            value(r.flops_ratio, 3),
        ])
    return render(header, rows) + _notes(t2, ["model", "dataset", "method", "pruning_ratio"])


def table2_improvement(imp: pd.DataFrame) -> str:
    """The "EB Train Improv." row per setting and ratio, by the paper's rule, beside the paper's."""
    rows = [[r.model, r.dataset, value(r.pruning_ratio, 2), int(r.n_methods), value(r.acc_improv),
             value(r.acc_improv_paper), value(r.energy_improv_x, 2, "×"),
             value(r.est_energy_improv_x, 2, f"× (est., {DEFAULT_RULE})"),
             value(r.energy_improv_x_paper, 1, "× (est.)"), value(r.flops_improv_x, 2, "×"),
             value(r.flops_improv_x_paper, 1, "×"),
             "; ".join(b for b in (r.acc_basis, r.energy_basis, r.est_energy_basis, r.flops_basis) if isinstance(b, str))]
            for _, r in imp.iterrows()]
    header = ["Model", "Dataset", "p", "methods", "Δ top-1 best", "paper", "energy (LL measured)", "energy (LL est.)",
              "paper", "FLOPs", "paper", "basis"]
    return render(header, rows) + _notes(imp, ["model", "dataset", "pruning_ratio"])


def accuracy_table(t: pd.DataFrame, key: str, key_title: str) -> str:
    rows = [[r.model, r.dataset, r[key], r.draw_epoch, int(r.n), stat(r.acc_mean, r.acc_std, r.acc_n, r.n),
             stat(r.acc_final_mean, r.acc_final_std, r.acc_final_n, r.n), value(r.acc_paper), value(r.acc_ratio, 3)]
            for _, r in t.iterrows()]
    return render(["Model", "Dataset", key_title, "Draw epoch", "n", "Retrain top-1 best (%)", "final", "paper", "×"],
                  rows) + \
        _notes(t, ["model", "dataset", key])


def table3(t: pd.DataFrame) -> str:
    rows = [[r.model, r.dataset, r.method, value(r.pruning_ratio, 2), int(r.n),
             stat(r.top1_mean, r.top1_std, r.top1_n, r.n), stat(r.top1_final_mean, r.top1_final_std, r.top1_final_n, r.n),
             value(r.top1_paper), value(r.top1_improv),
             value(r.top1_improv_paper), stat(r.top5_mean, r.top5_std, r.top5_n, r.n), value(r.top5_paper),
             stat(r.flops_p_mean, r.flops_p_std, r.flops_p_n, r.n, 1), value(r.flops_p_paper),
             energy(r, "energy_mj", 2), r.get("energy_scope") or "", energy(r, "est_energy_mj", 2),
             value(r.energy_mj_paper)] for _, r in t.iterrows()]
    return render(["Model", "Dataset", "Method", "p", "n", "Top-1 best", "final", "paper", "Δ vs unpruned", "paper",
                   "Top-5", "paper", "PFLOPs", "paper", "Energy MJ (measured)", "scope",
                   f"Energy MJ (est., rule {DEFAULT_RULE})", "paper MJ"],
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
