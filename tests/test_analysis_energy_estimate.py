"""The 8-bit energy rules. `bits` and `mac` are checked from first principles (power x time, unit
energies), through the real record builder; `paper-fit` only for what it is: the constant fitted to the
paper's own LL/LF ratios. No rule is tested against the numbers it was fitted to."""
from __future__ import annotations

import json

import pytest

from analysis import energy_estimate as ee
from analysis import paper
from tests.record_runs import make_run


def test_bits_bills_idle_unscaled_and_a_quarter_of_the_rest():
    idle_only = {"energy_j": 400.0, "net_energy_j": 0.0, "precision": "bfp8"}
    all_dynamic = {"energy_j": 400.0, "net_energy_j": 400.0, "precision": "bfp8"}
    fp32 = {"energy_j": 50.0, "net_energy_j": 30.0, "precision": "fp32"}
    assert ee.estimate([idle_only], ee.BITS)[0] == pytest.approx(400.0)  # the board's idle draw stays
    assert ee.estimate([all_dynamic], ee.BITS)[0] == pytest.approx(100.0)  # 8 of 32 bits
    assert ee.estimate([all_dynamic, fp32], ee.BITS)[0] == pytest.approx(150.0)  # FP32 phases as measured
    assert ee.estimate([{**all_dynamic, "precision": "bfp4"}], ee.BITS)[0] == pytest.approx(50.0)
    # no idle baseline: nothing above idle to scale, so no estimate rather than a guess
    assert ee.estimate([{"energy_j": 400.0, "net_energy_j": None, "precision": "bfp8"}], ee.BITS) == (None, None)


@pytest.mark.slow
def test_bits_and_mac_in_a_record_from_power_and_time(tmp_path):
    """An LL run at a constant 1 kW with a 400 W idle: each 8-bit phase is 400 W x t + (600 W x t) x 8/32."""
    run = make_run(tmp_path, "ebtrain-ll", energy_j=161e3, meter_idle_w=400.0, flops=False)
    record = json.loads((run / "record.json").read_text())
    watts = record["totals"]["energy_j"] / record["totals"]["seconds"]
    expected_bits, expected_mac = 0.0, 0.0
    for p in record["phases"]:
        t = p["seconds"]
        low = p["precision"] not in (None, "fp32")
        expected_bits += (400.0 * t + (watts - 400.0) * t * 8 / 32) if low else watts * t
        expected_mac += watts * t * (0.23 / 4.6 if low else 1.0)
    est = record["totals"]["estimates"]
    assert est["bits"] == pytest.approx(expected_bits, rel=1e-3)
    assert est["mac"] == pytest.approx(expected_mac, rel=1e-3)
    assert record["totals"]["estimated_energy_j"] == est["bits"] and "rule bits" in record["totals"]["estimate_rule"]
    assert est["mac"] < est["paper-fit"] < est["bits"] < record["totals"]["energy_j"]


def test_paper_fit_is_the_constant_fitted_to_the_papers_ratios():
    """What `paper-fit` is (its provenance), not evidence that it is right: it is the minimax of the
    paper's 12 LL/LF ratios, and so misses none of those cells by more than the fit's residual."""
    ratios = [ll / lf for _, lf, ll in paper.ll_lf_cells()]
    assert len(ratios) == 12
    assert ee.PAPER_FIT.factor == pytest.approx(2 / (1 / min(ratios) + 1 / max(ratios)), abs=5e-4)
    assert "fitted" in ee.PAPER_FIT.text and "no independent estimate" in ee.PAPER_FIT.text


def test_rules_bill_only_8bit_phases_and_need_every_measurement():
    phases = [{"energy_j": 100.0, "precision": "bfp8"}, {"energy_j": 10.0, "precision": None}]
    assert ee.estimate(phases, ee.MAC)[0] == pytest.approx(100.0 * 0.23 / 4.6 + 10.0)
    assert ee.estimate(phases, ee.PAPER_FIT)[0] == pytest.approx(100.0 * ee.PAPER_FIT_FACTOR + 10.0)
    assert ee.estimate([{"energy_j": 5.0, "precision": None}]) == (None, None)
    assert ee.estimate([{"energy_j": None, "precision": "bfp8"}], ee.MAC) == (None, None)
