"""What the runs cost as the paper counts it (each run billed whole) beside what was really spent.

A run branched from a shared trunk (record `shared`, flattened to `shared_trunk`, `shared_epochs`,
`shared_seconds`, `shared_energy_kj`) bills the trunk's epochs it started from, so per-run energy is the
run's cost alone. The trunk trained once, to the last of its branches' cuts: the branch that used the most
of it bills every epoch it trained, so what was spent is each run less its billed share, plus that largest
share once per trunk. Energy of a group is shown only when every run in it was measured (a missing joule is
never a zero).
"""
from __future__ import annotations

import pandas as pd

from analysis import markdown

ALONE = "not branched"
TOTAL = "all runs"
COLUMNS = ["group", "runs", "trunk_epochs", "billed_seconds", "spent_seconds", "billed_energy_kj",
           "spent_energy_kj"]


def _num(v) -> float | None:
    v = pd.to_numeric(v, errors="coerce")
    return None if pd.isna(v) else float(v)


def _sum(values: pd.Series) -> float | None:
    """The sum (0 of none), or None when a value is missing."""
    values = pd.to_numeric(values, errors="coerce")
    return None if values.isna().any() else float(values.sum())


def _net(billed: float | None, shares: float | None, once: float | None) -> float | None:
    return None if billed is None or shares is None or once is None else billed - shares + once


def _row(group: str, runs: pd.DataFrame, trunks: pd.DataFrame) -> dict:
    """`runs` billed whole, and spent: each less its billed share, plus once the largest share of each trunk."""
    branched = runs[runs["shared_trunk"].notna()]
    billed_s, billed_kj = _sum(runs["seconds"]), _sum(runs["energy_kj"])
    return {"group": group, "runs": len(runs), "trunk_epochs": int(trunks["epochs"].sum()),
            "billed_seconds": billed_s, "billed_energy_kj": billed_kj,
            "spent_seconds": _net(billed_s, _sum(branched["shared_seconds"]), _sum(trunks["seconds"])),
            "spent_energy_kj": _net(billed_kj, _sum(branched["shared_energy_kj"]), _sum(trunks["energy_kj"]))}


def _trunks(runs: pd.DataFrame) -> pd.DataFrame:
    """Per trunk: the epochs, seconds and kJ of the branch that used the most of it."""
    branched = runs[runs["shared_trunk"].notna()]
    if branched.empty:
        return pd.DataFrame(columns=["trunk", "epochs", "seconds", "energy_kj"])
    most = branched.sort_values("shared_epochs").groupby("shared_trunk", sort=True).tail(1)
    return pd.DataFrame({"trunk": most["shared_trunk"], "epochs": most["shared_epochs"].astype(int),
                         "seconds": pd.to_numeric(most["shared_seconds"]),
                         "energy_kj": pd.to_numeric(most["shared_energy_kj"], errors="coerce")}).sort_values("trunk")


def sweep_spending(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trunk (its branches), one for the runs that branched from none, one for all runs."""
    if runs.empty or "shared_trunk" not in runs:
        return pd.DataFrame(columns=COLUMNS)
    trunks = _trunks(runs)
    rows = [_row(t.trunk, runs[runs["shared_trunk"] == t.trunk], trunks[trunks["trunk"] == t.trunk])
            for t in trunks.itertuples()]
    alone = runs[runs["shared_trunk"].isna()]
    if len(alone):
        rows.append(_row(ALONE, alone, trunks.iloc[0:0]))
    rows.append(_row(TOTAL, runs, trunks))
    return pd.DataFrame(rows, columns=COLUMNS)


def _saved(billed, spent) -> str:
    billed, spent = _num(billed), _num(spent)
    if billed is None or spent is None or not billed:
        return markdown.MISSING
    return f"{1 - spent / billed:.0%}"


def markdown_table(table: pd.DataFrame) -> str:
    header = ["group", "runs", "trunk epochs (trained once)", "billed h", "spent h", "saved", "billed kJ",
              "spent kJ", "saved"]
    rows = [[f"`{r.group}`" if r.group not in (ALONE, TOTAL) else f"**{r.group}**", r.runs, r.trunk_epochs,
             markdown.value(_hours(r.billed_seconds), None), markdown.value(_hours(r.spent_seconds), None),
             _saved(r.billed_seconds, r.spent_seconds), markdown.value(r.billed_energy_kj, 1),
             markdown.value(r.spent_energy_kj, 1), _saved(r.billed_energy_kj, r.spent_energy_kj)]
            for r in table.itertuples()]
    return markdown.render(header, rows)


def _hours(seconds) -> float | None:
    seconds = _num(seconds)
    return None if seconds is None else seconds / 3600.0


BACKING = ("Per-run figures and tables bill each branch the trunk epochs it started from (record `shared`), as "
           "the paper counts a run alone; *spent* counts each trunk once: every run's own part plus, per trunk, "
           "the share of the branch that used the most of it (the trunk trains to its last branch's cut). Every "
           "record counts, whatever its status (what was spent was spent). kJ is measured; a group with a run "
           "without a meter shows —.")
