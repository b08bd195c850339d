"""Loading run records into one DataFrame (synthetic records only)."""
from __future__ import annotations

import math

from analysis.records import load_records, usable_runs
from analysis.synthetic import record, write_run


def test_flattens_phases_and_flags_partial(tmp_path):
    phases = [
        {"name": "search", "epochs": 20, "start": 0.0, "end": 10.0, "seconds": 10.0, "energy_j": 100.0,
         "mean_w": 10.0, "flops": 2e15, "coverage": 1.0, "samples": 50},
        {"name": "retrain", "epochs": 70, "start": 10.0, "end": 30.0, "seconds": 20.0, "energy_j": 300.0,
         "mean_w": 15.0, "flops": 3e15, "coverage": 0.9, "samples": 100},
        # a resumed run split the retrain phase in two; one part's meter had no energy
        {"name": "retrain", "epochs": 70, "start": 30.0, "end": 40.0, "seconds": 10.0, "energy_j": None,
         "mean_w": None, "flops": 1e15, "coverage": 0.8, "samples": 50},
    ]
    write_run(tmp_path, record(run_id="synthetic-a", phases=phases, flops=None, energy_j=400.0))
    write_run(tmp_path, record(run_id="synthetic-b", status="partial"))
    write_run(tmp_path, record(run_id="synthetic-c", status="failed", top1=None))
    df = load_records(str(tmp_path / "*")).set_index("run_id")

    a = df.loc["synthetic-a"]
    assert a["search_seconds"] == 10.0 and a["search_energy_j"] == 100.0 and a["search_mean_w"] == 10.0
    assert a["retrain_seconds"] == 30.0 and a["retrain_epochs"] == 140 and a["retrain_coverage"] == 0.8
    assert a["retrain_energy_j"] is None or math.isnan(a["retrain_energy_j"])  # part missing -> missing
    assert a["flops"] == 6e15 and a["flops_p"] == 6.0  # totals.flops null: sum of the phases
    assert a["model"] == "VGG16" and a["dataset_name"] == "CIFAR-10" and a["method_name"] == "EB Train (FF)"
    assert a["lr_milestones"] == (80, 120)  # spec fractions -> epochs
    assert a["draw_epoch"] == 20  # detector's epoch (eb_draw_epoch null)

    assert list(df["usable"]) == [True, False, False]
    assert list(usable_runs(df.reset_index())["run_id"]) == ["synthetic-a"]
    assert list(usable_runs(df.reset_index(), include_partial=True)["run_id"]) == ["synthetic-a", "synthetic-b"]


def test_energy_kinds_never_share_a_column(tmp_path):
    write_run(tmp_path, record(run_id="synthetic-m", energy_j=5000.0))
    write_run(tmp_path, record(run_id="synthetic-e", method="ebtrain-ll", energy_j=None, estimated_energy_j=700.0))
    write_run(tmp_path, record(run_id="synthetic-n", energy_j=None))
    df = load_records(str(tmp_path / "*/record.json")).set_index("run_id")
    assert df.loc["synthetic-m", "energy_kj"] == 5.0 and math.isnan(df.loc["synthetic-m", "est_energy_kj"])
    assert math.isnan(df.loc["synthetic-e", "energy_kj"]) and df.loc["synthetic-e", "est_energy_kj"] == 0.7
    assert df.loc["synthetic-e", "energy_source"] == "estimated"
    assert math.isnan(df.loc["synthetic-n", "energy_kj"]) and df.loc["synthetic-n", "energy_source"] == "none"


def test_unreadable_record_is_kept_and_flagged(tmp_path):
    write_run(tmp_path, record(run_id="synthetic-ok"))
    bad = tmp_path / "synthetic-torn"
    bad.mkdir()
    (bad / "record.json").write_text('{"schema": 1, "run_id": ')
    df = load_records(str(tmp_path / "*")).set_index("run_id")
    assert df.loc["synthetic-torn", "status"] == "unreadable" and not df.loc["synthetic-torn", "usable"]
    assert df.loc["synthetic-ok", "usable"]


def test_no_records_gives_empty_frame_with_columns(tmp_path):
    df = load_records(str(tmp_path / "*"))
    assert df.empty and {"run_id", "status", "top1", "energy_kj", "usable"} <= set(df.columns)
