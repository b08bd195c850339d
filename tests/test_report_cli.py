"""`ebt report` end to end on records made by the real record builder: files written, flagged runs,
a method registered only in the registry, the two-meter gap table, empty input, a bad output folder."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import events as ev
from experiments import methods
from experiments.phases import Train
from harness.cli import main
from tests.record_runs import make_run


@pytest.mark.slow
def test_report_writes_figures_tables_and_page(tmp_path):
    results = tmp_path / "results"
    runs = results / "runs"
    masks = {0.5: {1: np.array([1, 0, 1, 0], bool), 2: np.array([1, 1, 1, 0], bool)}}
    for seed, acc in ((1, 93.0), (2, 93.4)):
        make_run(runs, seed=seed, best_top1=acc, eb_draw_epoch=20, energy_j=210e3, masks=masks)
    make_run(runs, "snip", seed=1, best_top1=92.0, energy_j=373.1e3, wall_w_extra=6.0)
    make_run(runs, "snip", seed=2, best_top1=10.0, energy_j=373.1e3, wall_w_extra=6.0, status=ev.PARTIAL,
             run_id="synthetic-partial")  # the same cell as the ok SNIP run: same spec but the seed
    make_run(runs, "ebtrain-ff", seed=3, best_top1=7.8, run_id="synthetic-late", eb_epoch=150,
             eb_extra={"late": True, "note": "ticket drawn at epoch 150 of 160, at or after the last lr decay"})
    make_run(runs, "dense", prune_ratio=0.0, dataset="digits", best_top1=97.0, energy_j=None, flops=False)
    assert main(["report", "--results", str(results)]) == 0

    for name in ("fig1_retrain_accuracy", "fig5_training_flops", "energy_accuracy", "fig3_mask_distance"):
        assert (results / "figures" / f"{name}.png").stat().st_size > 0
        assert (results / "figures" / f"{name}.pdf").exists()
    t2 = pd.read_csv(results / "tables" / "table2_methods.csv")
    snip = t2[(t2.method == "SNIP") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)].iloc[0]
    assert snip["n"] == 1 and snip["acc_mean"] == 92.0  # partial run excluded by default
    ff = t2[(t2.method == "EB Train (FF)") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)]
    # the detector run with the late ticket is its own cell, counted and marked; the fixed draws are not Table 2's
    assert len(ff) == 1 and ff.iloc[0]["n"] == 1 and ff.iloc[0]["flags"] == "1 late"
    assert ff.iloc[0]["run_ids"] == "synthetic-late" and ff.iloc[0]["ticket_epoch_mean"] == 150
    others = pd.read_csv(results / "tables" / "table2_other_cells.csv")
    assert list(others["n"]) == [2] and "fixed epoch" in others.iloc[0]["why"]
    for csv in (results / "tables").glob("*.csv"):
        if csv.name not in ("runs.csv", "meter_gap.csv"):
            data = pd.read_csv(csv)
            assert "run_ids" in data, csv.name
    for name in ("fig1_retrain_accuracy", "fig5_training_flops", "energy_accuracy", "fig3_mask_distance"):
        assert "run_ids" in pd.read_csv(results / "figures" / f"{name}.csv")
    page = (results / "REPORT.md").read_text()
    assert "`synthetic-partial`: **partial**" in page and "Records: 6 (ok: 5, partial: 1)" in page
    assert "`synthetic-late`: **ok, ticket drawn late" in page and "at epoch 150 of 160" in page
    assert "| 1, 1 late |" in page and "Counted in their cells and marked" in page
    assert "figures/fig1_retrain_accuracy.png" in page and "runs back" in page and "top-1 best" in page
    assert "paper-fit" in page and "validates nothing" in page

    # the old view: flagged runs left out
    assert main(["report", "--results", str(results), "--exclude-flagged"]) == 0
    t2 = pd.read_csv(results / "tables" / "table2_methods.csv")
    ff = t2[(t2.method == "EB Train (FF)") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)].iloc[0]
    assert ff["n"] == 0
    assert "Left out (--exclude-flagged): 1 run(s) with ticket drawn late" in (results / "REPORT.md").read_text()
    # the two-meter run: module vs wall per phase, 6 W apart
    gap = pd.read_csv(results / "tables" / "meter_gap.csv")
    assert set(gap["phase"]) == {"prune", "train"} and np.allclose(gap["gap_w"], 6.0)
    assert (gap["primary_scope"] == "module").all() and (gap["secondary_scope"] == "wall").all()
    assert "module vs wall" in page
    assert not list(results.rglob("*.tmp"))  # no temp files left behind

    out = tmp_path / "elsewhere"
    assert main(["report", "--runs", str(runs / "*"), "--out", str(out), "--include-partial"]) == 0
    t2 = pd.read_csv(out / "tables" / "table2_methods.csv")
    snip = t2[(t2.method == "SNIP") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)].iloc[0]
    # the partial run counts; it stopped before its first epoch, so it has no accuracy to average
    assert snip["n"] == 2 and snip["acc_n"] == 1 and snip["acc_mean"] == 92.0


def test_a_method_registered_only_in_the_registry_shows_up(tmp_path, monkeypatch):
    def phases():
        return [Train("train", epochs=lambda run: run.spec["epochs"])]

    throwaway = methods.Method("throwaway", "Throwaway (test)", methods.BASELINE, phases)
    monkeypatch.setitem(methods.METHODS, "throwaway", throwaway)
    results = tmp_path / "results"
    make_run(results / "runs", "throwaway", best_top1=91.5, energy_j=300e3, flops=False)
    make_run(results / "runs", "ebtrain-ff", best_top1=93.0, energy_j=200e3, flops=False)
    assert main(["report", "--results", str(results)]) == 0
    t2 = pd.read_csv(results / "tables" / "table2_methods.csv")
    row = t2[t2.method == "Throwaway (test)"].iloc[0]
    assert row["n"] == 1 and row["acc_mean"] == 91.5
    imp = pd.read_csv(results / "tables" / "table2_improvement.csv").iloc[0]
    assert "Throwaway (test)" in imp["acc_basis"]  # a baseline by its registry group
    assert "| Throwaway (test) |" in (results / "tables" / "table2_methods.md").read_text()


def test_report_over_zero_records_keeps_the_old_report(tmp_path, caplog):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)  # a results folder with no runs yet
    (results / "REPORT.md").write_text("a good report")
    assert main(["report", "--results", str(results)]) == 2
    assert "no run records match" in caplog.text and "left as it is" in caplog.text
    assert "traceback" not in caplog.text
    assert (results / "REPORT.md").read_text() == "a good report" and not list(results.rglob("*.png"))


def test_unwritable_out_is_a_clear_error(tmp_path, caplog):
    make_run(tmp_path / "runs", "dense", prune_ratio=0.0, energy_j=None, flops=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", "--results", str(tmp_path), "--out", str(blocker)]) == 1
    assert "cannot write the report" in caplog.text and "--out" in caplog.text


def test_missing_results_folder_is_one_line_and_writes_nothing(tmp_path, caplog):
    missing = tmp_path / "no-such-results"
    assert main(["report", "--results", str(missing)]) == 2
    assert "no results folder" in caplog.text and "ebt run" in caplog.text
    assert not missing.exists()
