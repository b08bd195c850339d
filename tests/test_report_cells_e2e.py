"""Two experiments trained into one results folder never share a table row: a Table 2-style sweep (EB
Train FF with the detector at p = 0.5, two seeds, and dense) and a Fig 1-style one (FF at p = 0.5 drawn
at fixed epochs, another lr), both run for real by `ebt run` on the digits set, then `ebt report`."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from harness.cli import main
from tests.runs import TINY

COMMON = {k: v for k, v in TINY.items() if k not in ("seed", "lr")}


def _config(tmp_path, name: str, body: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**COMMON, "meter": "none", **body}))
    return str(path)


@pytest.mark.slow
def test_table2_and_fig1_runs_in_one_folder_stay_in_their_own_cells(tmp_path, monkeypatch):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    results = tmp_path / "results"
    table2 = _config(tmp_path, "table2", {"epochs": 4, "lr": 0.1, "sweep": [
        {"method": ["ebtrain-ff"], "seed": [0, 1]}, {"method": ["dense"], "seed": [0]}]})
    fig1 = _config(tmp_path, "fig1", {"epochs": 4, "lr": 0.2, "method": "ebtrain-ff", "seed": 0,
                                      "sweep": {"eb_draw_epoch": [1, 2]}})
    assert main(["run", table2, "--results", str(results)]) == 0
    assert main(["run", fig1, "--results", str(results)]) == 0
    records = [json.loads(p.read_text()) for p in results.glob("runs/*/record.json")]
    detector = {r["run_id"]: r for r in records if r["method"] == "ebtrain-ff" and r["config"]["lr"] == 0.1}
    fixed = {r["run_id"] for r in records if r["config"]["eb_draw_epoch"] is not None}
    dense = [r["run_id"] for r in records if r["method"] == "dense"]
    assert len(detector) == 2 and len(fixed) == 2 and len(dense) == 1

    assert main(["report", "--results", str(results)]) == 0
    for csv in (results / "tables").glob("*.csv"):
        if csv.name == "runs.csv":
            continue
        for ids in pd.read_csv(csv).get("run_ids", pd.Series(dtype=object)).dropna():
            ids = set(ids.split())
            assert not (ids & set(detector) and ids & fixed), f"{csv.name} pools both experiments: {ids}"
    t2 = pd.read_csv(results / "tables" / "table2_methods.csv")
    ff = t2[(t2.method == "EB Train (FF)") & (t2.pruning_ratio == 0.5) & (t2.n > 0)]
    assert len(ff) == 1 and set(ff.iloc[0]["run_ids"].split()) == set(detector)
    mean_best = sum(r["accuracy"]["best_top1"] for r in detector.values()) / 2
    assert ff.iloc[0]["acc_mean"] == pytest.approx(mean_best)
    unpruned = t2[(t2.method == "Unpruned") & (t2.n > 0)]
    assert len(unpruned) == 1 and unpruned.iloc[0]["run_ids"] == dense[0]
    others = pd.read_csv(results / "tables" / "table2_other_cells.csv")
    assert set(" ".join(others["run_ids"]).split()) == fixed and len(others) == 2  # one cell per draw epoch
    imp = pd.read_csv(results / "tables" / "table2_improvement.csv")
    assert set(" ".join(imp["run_ids"].dropna()).split()) <= set(detector) | set(dense)
    fig1_points = pd.read_csv(results / "figures" / "fig1_retrain_accuracy.csv")
    for ids in fig1_points["run_ids"].dropna():
        assert not (set(ids.split()) & set(detector) and set(ids.split()) & fixed)
    assert "Not in this table" in (results / "REPORT.md").read_text()
