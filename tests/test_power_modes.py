"""The power-mode report: cells per mode, the Zeus-style optimal-mode choices and the ranking check, on
tables with known answers."""
import numpy as np
import pandas as pd
import pytest

from analysis import cells
from analysis import power_modes as pm
from analysis.records import MODE_CHANGED, held_mode


def _table(rows):
    """rows: (model, label, mode, kJ, hours)."""
    return pd.DataFrame([{"model": m, "dataset_name": "CIFAR-10", "method": label.split()[0], "label": label,
                          "prune_ratio": 0.5, "mode": mode, "n": 1, "energy_kj": kj, "energy_u_kj": 0.1,
                          "hours": h, "best_top1": 90.0, "run_ids": f"{m}-{label}-{mode}", "family": f"{m}/{label}"}
                         for m, label, mode, kj, h in rows])


ROWS = [("VGG16", "dense", "MAXN (0)", 10.0, 1.0), ("VGG16", "dense", "MAXQ (1)", 8.0, 1.5),
        ("VGG16", "dense", "MAXP (2)", 9.0, 1.1),
        ("VGG16", "EB p=0.5", "MAXN (0)", 5.0, 0.5), ("VGG16", "EB p=0.5", "MAXQ (1)", 4.0, 0.8),
        ("VGG16", "EB p=0.5", "MAXP (2)", np.nan, 0.45),  # no meter in this mode: never the energy choice
        ("R101", "dense", "MAXN (0)", 20.0, 2.0), ("R101", "dense", "MAXQ (1)", 12.0, 3.0),
        ("R101", "EB p=0.5", "MAXN (0)", 15.0, 1.0), ("R101", "EB p=0.5", "MAXQ (1)", 14.0, 1.5)]


def test_optimal_modes_least_energy_least_time_and_within_a_slowdown():
    best = pm.optimal_modes(_table(ROWS), max_slowdown=1.2).set_index(["model", "label"])
    dense = best.loc[("VGG16", "dense")]
    assert (dense.least_energy, dense.least_time, dense.within_slowdown) == ("MAXQ (1)", "MAXN (0)", "MAXP (2)")
    assert dense.least_energy_kj == 8.0 and dense.within_slowdown_kj == 9.0 and dense.modes == 3
    eb = best.loc[("VGG16", "EB p=0.5")]
    # the fastest mode has no energy; within 1.2 x 0.45 h only MAXN's 0.5 h is measured
    assert (eb.least_energy, eb.least_time, eb.within_slowdown) == ("MAXQ (1)", "MAXP (2)", "MAXN (0)")
    assert "VGG16-dense-MAXQ (1)" in dense.run_ids
    wide = pm.optimal_modes(_table(ROWS), max_slowdown=1.5).set_index(["model", "label"])
    assert wide.loc[("VGG16", "dense")].within_slowdown == "MAXQ (1)"
    tight = pm.optimal_modes(_table(ROWS), max_slowdown=1.0).set_index(["model", "label"])
    assert tight.loc[("VGG16", "dense")].within_slowdown == "MAXN (0)"  # only the fastest itself
    assert pd.isna(tight.loc[("VGG16", "EB p=0.5")].within_slowdown)  # the fastest has no energy
    assert "—" in pm.markdown_optimal(tight.reset_index())


def test_ranking_holds_or_not_per_setting():
    rank = pm.ranking(_table(ROWS))
    vgg = rank[rank["model"] == "VGG16"]
    # EB has no energy in MAXP: the order is over the methods measured in every mode, i.e. MAXN and MAXQ
    assert set(vgg["mode"]) == {"MAXN (0)", "MAXQ (1)"} and vgg["holds"].all()
    assert set(vgg["order_by_kj"]) == {"EB p=0.5 < dense"}
    r101 = rank[rank["model"] == "R101"].set_index("mode")
    assert r101.loc["MAXN (0)", "order_by_kj"] == "EB p=0.5 < dense"
    assert r101.loc["MAXQ (1)", "order_by_kj"] == "dense < EB p=0.5"
    assert not r101["holds"].any()


def test_mode_table_groups_seeds_into_cells_with_their_runs():
    runs = pd.DataFrame([
        {"run_id": "a-s0", "model": "VGG16", "dataset_name": "Digits", "method": "dense", "label": "dense",
         "prune_ratio": 0.0, "mode": "MAXN (0)", "family": "f", "cell": "c0", "energy_kj": 10.0,
         "energy_unc_kj": 0.3, "hours": 1.0, "best_top1": 90.0},
        {"run_id": "a-s1", "model": "VGG16", "dataset_name": "Digits", "method": "dense", "label": "dense",
         "prune_ratio": 0.0, "mode": "MAXN (0)", "family": "f", "cell": "c0", "energy_kj": 12.0,
         "energy_unc_kj": 0.5, "hours": 2.0, "best_top1": 92.0},
        {"run_id": "b-s0", "model": "VGG16", "dataset_name": "Digits", "method": "dense", "label": "dense",
         "prune_ratio": 0.0, "mode": "MAXQ (1)", "family": "f", "cell": "c1", "energy_kj": None,
         "energy_unc_kj": None, "hours": 3.0, "best_top1": 91.0}])
    t = pm.mode_table(runs).set_index("mode")
    assert t.loc["MAXN (0)", "n"] == 2 and t.loc["MAXN (0)", "energy_kj"] == 11.0
    assert t.loc["MAXN (0)", "energy_u_kj"] == pytest.approx(np.hypot(np.std([10.0, 12.0], ddof=1), 0.4))
    assert t.loc["MAXN (0)", "hours"] == 1.5 and t.loc["MAXN (0)", "run_ids"] == "a-s0, a-s1"
    assert np.isnan(t.loc["MAXQ (1)", "energy_kj"]) and "—" in pm.markdown_mode_table(t.reset_index())


def test_cells_ignore_seed_and_meter_place_but_not_the_mode():
    a = {"method": "dense", "seed": 0, "run_id": "x", "meter_where": "device", "power_mode": "0"}
    b = dict(a, seed=1, run_id="y", meter_where="laptop")
    tx2 = {"board": "NVIDIA Jetson TX2", "jetpack": "4.6"}

    def record(config, device=tx2):
        return {"config": config, "device": device}

    def cell(rec):
        return cells.digest(cells.cell_spec(rec))

    def family(rec):
        return pm.family_of(cells.cell_spec(rec))

    assert cell(record(a)) == cell(record(b))
    assert cell(record(a)) != cell(record(dict(a, power_mode="1")))
    assert cell(record(a)) != cell(record(a, dict(tx2, board="NVIDIA Jetson AGX Orin")))
    assert family(record(a)) == family(record(dict(b, power_mode="1")))
    assert family(record(a)) != family(record(dict(b, lr=0.2)))
    assert held_mode({"conditions": {"power_mode": {"during": ["MAXN (0)"]}}}) == "MAXN (0)"
    assert held_mode({"conditions": {"power_mode": {"during": ["MAXN (0)", "MAXQ (1)"]}}}) == MODE_CHANGED
    assert held_mode({"device": {"power_mode": None}, "config": {"power_mode": "2"}}) == "2"


def test_report_refuses_a_max_slowdown_below_one(tmp_path, caplog):
    from harness.cli import main
    (tmp_path / "runs").mkdir()
    assert main(["report", "--results", str(tmp_path), "--max-slowdown", "0.9"]) == 2
    assert "--max-slowdown 0.9 is below 1" in caplog.text and not (tmp_path / "REPORT.md").exists()
