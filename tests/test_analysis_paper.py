"""The paper's numbers and the Improv. rule against the paper's own printed row."""
from __future__ import annotations

import pytest

from analysis import paper
from analysis.improvement import improvement, matches_printed, round_half_up, truncate

# The two printed energy ratios that the paper's own rule cannot give (the `note` column of
# analysis/paper/table2_improvement.csv).
ENERGY_EXCEPTIONS = {("VGG16", "CIFAR-10", 0.3), ("VGG16", "CIFAR-100", 0.5)}


def test_tables_load_with_notes():
    t2 = paper.table2()
    assert len(t2) == 96 and t2["method"].nunique() == 8
    doubt = t2[(t2.model == "PreResNet101") & (t2.dataset == "CIFAR-100") & (t2.pruning_ratio == 0.5)
               & (t2.method == "EB Train (re-init)")]
    assert doubt["retrain_acc"].item() == 73.36 and "OPEN DOUBT" in doubt["note"].item()
    ll = t2[t2.method == "EB Train (LL)"]
    assert ll["note"].str.contains("estimate").all()
    assert len(paper.table1()) == 32 and len(paper.table4()) == 32 and len(paper.table3()) == 13
    assert paper.table1()["draw_epoch"].tolist()[:4] == ["10", "20", "40", "final"]


def test_rounding_helpers():
    assert round_half_up(6.459) == 6.5 and round_half_up(1.15) == 1.2 and truncate(8.657) == 8.6
    assert matches_printed(8.657, 8.6) and matches_printed(6.464, 6.5) and not matches_printed(5.31, 6.6)


@pytest.mark.parametrize("row", paper.table2_improvement().to_dict("records"),
                         ids=lambda r: f"{r['model']}-{r['dataset']}-{r['pruning_ratio']}")
def test_improvement_rule_reproduces_printed_row(row):
    t2 = paper.table2()
    g = t2[(t2.model == row["model"]) & (t2.dataset == row["dataset"]) & (t2.pruning_ratio == row["pruning_ratio"])]
    imp = improvement(dict(zip(g.method, g.retrain_acc)), dict(zip(g.method, g.energy_kj)),
                      dict(zip(g.method, g.flops_p)))
    assert imp.acc == pytest.approx(row["acc_improv"], abs=1e-9)
    assert matches_printed(imp.flops_x, row["flops_improv_x"])
    key = (row["model"], row["dataset"], row["pruning_ratio"])
    if key in ENERGY_EXCEPTIONS:
        assert not matches_printed(imp.energy_x, row["energy_improv_x"]) and row["note"].startswith("energy")
    else:
        assert matches_printed(imp.energy_x, row["energy_improv_x"])


def test_improvement_with_missing_members():
    imp = improvement({"EB Train (FF)": 93.0, "SNIP": 92.5}, {"SNIP": 300.0}, {})
    assert imp.acc == pytest.approx(0.5) and "SNIP" in imp.acc_basis
    assert imp.energy_x != imp.energy_x and imp.flops_x != imp.flops_x  # NaN, never 0
