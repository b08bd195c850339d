"""Loading run records into one DataFrame: records made by the real record builder (tests/record_runs.py)."""
from __future__ import annotations

import json
import math

import pytest

from analysis.records import (
    NO_TICKET,
    TOO_LATE,
    load_records,
    trusted_runs,
    usable_runs,
)
from experiments import events as ev
from tests.record_runs import EPOCH_S, make_run


def _frame(tmp_path):
    return load_records(str(tmp_path / "*")).set_index("run_id")


def test_phases_totals_and_status(tmp_path):
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-a", best_top1=93.4, final_top1=93.1, energy_j=16100.0,
             eb_epoch=20, epochs=160)
    make_run(tmp_path, "snip", run_id="synthetic-b", status=ev.PARTIAL)
    make_run(tmp_path, "snip", run_id="synthetic-c", status=ev.FAILED)
    df = _frame(tmp_path)
    a = df.loc["synthetic-a"]
    record = json.loads((tmp_path / "synthetic-a" / "record.json").read_text())
    # 161 s of constant power: search 20 epochs, prune (1 s), retrain 140 epochs, all from the builder
    assert a["search_seconds"] == 20 * EPOCH_S and a["retrain_epochs"] == 140
    assert a["search_energy_j"] == pytest.approx(2000.0, rel=1e-6) and a["search_mean_w"] == pytest.approx(100.0)
    assert a["energy_kj"] == pytest.approx(16.1, rel=1e-6) and a["energy_scope"] == "module"
    assert a["energy_unc_kj"] == pytest.approx(record["totals"]["energy_uncertainty_j"] / 1e3)
    assert a["flops"] == record["totals"]["flops"] and a["flops_p"] == pytest.approx(record["totals"]["flops"] / 1e15)
    assert a["best_top1"] == 93.4 and a["final_top1"] == 93.1  # the official metric and the last epoch's
    assert a["model"] == "VGG16" and a["dataset_name"] == "CIFAR-10" and a["method_name"] == "EB Train (FF)"
    assert a["lr_milestones"] == (80, 120)  # spec fractions -> epochs
    assert a["draw_epoch"] == 20  # the detector's epoch (no fixed draw)
    assert list(df["usable"]) == [True, False, False]
    assert list(usable_runs(df.reset_index())["run_id"]) == ["synthetic-a"]
    assert list(usable_runs(df.reset_index(), include_partial=True)["run_id"]) == ["synthetic-a", "synthetic-b"]


def test_energy_kinds_never_share_a_column(tmp_path):
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-m", energy_j=5000.0)
    make_run(tmp_path, "ebtrain-ll", run_id="synthetic-e", energy_j=5000.0, meter_idle_w=10.0)
    make_run(tmp_path, "ebtrain-ll", run_id="synthetic-i", energy_j=5000.0)  # no idle baseline
    make_run(tmp_path, "ebtrain-ll", run_id="synthetic-n", energy_j=None)
    df = _frame(tmp_path)
    m, e, i, n = df.loc["synthetic-m"], df.loc["synthetic-e"], df.loc["synthetic-i"], df.loc["synthetic-n"]
    assert m["energy_kj"] == pytest.approx(5.0) and math.isnan(m["est_energy_kj"])
    # LL: measured stays measured; each 8-bit rule gives its own column, bits (the default) above mac
    assert e["energy_kj"] == pytest.approx(5.0) and e["estimate_rule"] == "bits"
    assert e["est_mac_energy_kj"] < e["est_fit_energy_kj"] < e["est_energy_kj"] < e["energy_kj"]
    assert e["est_energy_unc_kj"] < e["energy_unc_kj"]
    # without an idle baseline there is no energy above idle to scale: bits is missing, the others are not
    assert math.isnan(i["est_energy_kj"]) and i["est_mac_energy_kj"] > 0
    assert math.isnan(n["energy_kj"]) and math.isnan(n["est_energy_kj"]) and n["energy_source"] == "none"


def test_early_bird_flags(tmp_path):
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-none", detected=False)
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-late", eb_extra={"late": True, "retrain_epochs": 0})
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-fixed", detected=False, eb_draw_epoch=10)
    make_run(tmp_path, "ebtrain-ff", run_id="synthetic-good")
    df = _frame(tmp_path)
    assert df.loc["synthetic-none", "eb_flag"] == NO_TICKET and df.loc["synthetic-late", "eb_flag"] == TOO_LATE
    # a ticket drawn at a fixed epoch is not "no ticket", even when the detector did not fire
    assert sorted(trusted_runs(df.reset_index())["run_id"]) == ["synthetic-fixed", "synthetic-good"]


def test_unreadable_and_old_records(tmp_path):
    make_run(tmp_path, "dense", prune_ratio=0.0, run_id="synthetic-ok")
    bad = tmp_path / "synthetic-torn"
    bad.mkdir()
    (bad / "record.json").write_text('{"schema": 1, "run_id": ')
    # a schema 1 record (before uncertainty and scope) still loads, with those columns empty
    old = json.loads((tmp_path / "synthetic-ok" / "record.json").read_text())
    old.update(schema=1, run_id="synthetic-old")
    del old["secondary_meters"]
    for key in ("energy_uncertainty_j", "scope"):
        old["totals"].pop(key)
    (tmp_path / "synthetic-old").mkdir()
    (tmp_path / "synthetic-old" / "record.json").write_text(json.dumps(old))
    df = _frame(tmp_path)
    assert df.loc["synthetic-torn", "status"] == "unreadable" and not df.loc["synthetic-torn", "usable"]
    assert df.loc["synthetic-ok", "usable"] and df.loc["synthetic-old", "usable"]
    assert math.isnan(df.loc["synthetic-old", "energy_unc_kj"]) and df.loc["synthetic-old", "energy_kj"] > 0


def test_no_records_gives_empty_frame_with_columns(tmp_path):
    df = load_records(str(tmp_path / "*"))
    assert df.empty and {"run_id", "status", "best_top1", "final_top1", "energy_kj", "usable"} <= set(df.columns)
