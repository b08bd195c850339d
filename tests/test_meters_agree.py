"""`ebt meters agree` on two stand-in meters driven by the same load schedule, the reference reading 5 %
above the checked one: MLPerf's procedure (idle, two built-in training loads, five windows each,
Olympic-scored) must report B/A = 1.05 within its stated uncertainty, store it under results/calibrations/,
and a run applying it is labelled as corrected."""
import json
import math

import pytest

from analysis.agreement import Level, agreement, olympic
from harness.cli import main
from harness.record import build_record
from meter_standins import LineStreamer, PtyPeer
from test_validity import _run, _steady


def test_olympic_drops_the_highest_and_lowest_window():
    assert olympic([1.0, 5.0, 2.0, 3.0, 100.0]) == (pytest.approx(10.0 / 3), [2.0, 3.0, 5.0])


def test_ratio_gain_and_offset_of_a_known_affine_pair():
    a = {"idle": [5.0, 5.1, 4.9, 5.0, 5.2], "low": [8.0, 8.1, 7.9, 8.0, 8.2], "high": [15.0, 15.2, 14.8, 15.0, 15.1]}
    levels = [Level(n, w, [2.0 * x + 1.0 for x in w]) for n, w in a.items()]
    out = agreement(levels, (0.0, 0.0), (0.0, 0.0))
    assert out["gain"] == pytest.approx(2.0) and out["offset_w"] == pytest.approx(1.0, abs=1e-9)
    assert out["levels"][0]["ratio"] == pytest.approx((2 * 5.0 + 1) / 5.0, rel=0.01)


@pytest.mark.slow
def test_agree_on_two_standins_with_a_5_percent_offset_stores_and_a_run_applies_it(tmp_path, capsys):
    def schedule(rel):
        return 10.0 + 3.0 * math.sin(2 * math.pi * rel / 7.0)

    peers = [PtyPeer(), PtyPeer()]
    streams = [LineStreamer(peers[0], schedule, hz=50.0), LineStreamer(peers[1], lambda r: 1.05 * schedule(r), hz=50.0)]
    spec_a, spec_b = ("lines:%s?accuracy_rel=0.002" % p.port for p in peers)
    results = tmp_path / "results"
    try:
        for s in streams:
            s.start()
        rc = main(["meters", "agree", "--meter", spec_a, "--meter", spec_b, "--window-s", "0.3",
                   "--results", str(results), "--json"])
    finally:
        for s in streams:
            s.stop_event.set()
            s.join(2)
        for p in peers:
            p.close()
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(out["ratio"] - 1.05) <= out["ratio_uncertainty"] < 0.02
    assert [lv["name"] for lv in out["levels"]] == ["idle", "low", "high"]
    assert all(len(lv["windows_a_w"]) == 5 and len(lv["kept_ratios"]) == 3 for lv in out["levels"])
    stored = json.loads((results / "calibrations" / (out["name"] + ".json")).read_text())
    assert stored["ratio"] == out["ratio"] and stored["meter_a"] == spec_a and stored["meter_b"] == spec_b
    rec = build_record(_run(results / "runs" / "r1", [("p", 0, 100)], _steady(0, 100),
                            {"meter": spec_a, "meter_calibration": out["name"]}))
    assert rec["totals"]["energy_correction"] == out["name"]
    assert rec["phases"][0]["energy_j"] == pytest.approx(1000.0 * out["ratio"], rel=1e-3)


def test_agree_needs_two_meters_and_a_local_target(caplog):
    assert main(["meters", "agree", "--meter", "lines:/dev/x"]) != 0
    assert "give --meter twice" in caplog.text
    assert main(["meters", "agree", "--meter", "a", "--meter", "b", "--target", "ssh://h"]) != 0


def test_the_module_vs_wall_table_uses_a_stored_agreement():
    import pandas as pd

    from analysis.meter_gap import gap_table
    run = {"run_id": "r1", "board": "NVIDIA Jetson AGX Orin", "meter_spec": "ina3221", "energy_scope": "module",
           "phases": [{"name": "search", "energy_j": 100.0, "energy_uncertainty_j": 1.0, "mean_w": 10.0,
                       "scope": "module"}],
           "secondary_meters": [{"spec": "wattsup:/dev/wu", "scope": "wall", "phases": [
               {"name": "search", "energy_j": 130.0, "energy_uncertainty_j": 2.0, "mean_w": 13.0}]}]}
    cal = {"name": "agx__ina3221__vs__wattsup", "board": "NVIDIA Jetson AGX Orin", "meter_a": "ina3221",
           "meter_b": "wattsup:/dev/wu", "ratio": 1.31, "ratio_uncertainty": 0.02}
    row = gap_table(pd.DataFrame([run]), [cal]).iloc[0]
    assert row["agreement"] == cal["name"] and row["agreed_ratio"] == 1.31 and row["agreed_ratio_unc"] == 0.02
    assert row["measured_ratio"] == pytest.approx(1.3) and row["gap_j"] == pytest.approx(30.0)
    other_board = gap_table(pd.DataFrame([dict(run, board="Jetson Orin Nano")]), [cal]).iloc[0]
    assert other_board["agreement"] is None and other_board["agreed_ratio"] is None
