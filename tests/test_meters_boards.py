"""Every Jetson generation's real layout or real line, through each on-board meter: the documented total.

Fixtures and their sources: tests/boards.py. The rule per board: hw/meters/rails.py.
"""
import os
import stat

import pytest

import fake_jtop
from boards import BOARDS, TX2_DEVKIT, iio_tree
from hw.meters import MeterUnavailable, NoReading, open_meter
from hw.meters.jtop import power_to_watts
from hw.meters.rails import TOTAL_RAILS
from hw.meters.tegrastats import parse_line

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


@pytest.mark.parametrize("board", BOARDS, ids=repr)
def test_ina3221_tree_gives_the_board_total(board, tmp_path):
    root = board.tree(str(tmp_path))
    meter = open_meter("ina3221?root=" + root)
    try:
        sample = meter.read()
        assert sample.watts == pytest.approx(board.tree_total_w, abs=1e-3)
        info = meter.info()
        assert info["scope"] == board.scope and info["provenance"]["total_rails"]
        assert set(info["provenance"]["total_rails"]) <= set(TOTAL_RAILS)
        assert all(os.path.exists(p) for paths in info["provenance"]["files"].values() for p in paths)
    finally:
        meter.close()


@pytest.mark.parametrize("board", BOARDS, ids=repr)
def test_tegrastats_line_gives_the_board_total(board):
    watts, rails = parse_line(board.line)
    assert watts == pytest.approx(board.line_total_w, abs=1e-6)
    assert "RAM" not in rails and "SWAP" not in rails


@pytest.mark.parametrize("board", [b for b in BOARDS if b.jtop], ids=repr)
def test_jtop_power_gives_the_board_total(board):
    watts, rails = power_to_watts(board.jtop)
    assert watts == pytest.approx(board.jtop_total_w, abs=1e-6)


def test_agx_orin_leaves_out_the_rail_fed_by_vin_sys_5v0(tmp_path):
    agx = [b for b in BOARDS if b.name == "AGX Orin JP5"][0]
    meter = open_meter("ina3221?root=" + agx.tree(str(tmp_path)))
    try:
        sample = meter.read()
        assert "VDDQ_VDD2_1V8AO" in sample.rails and "NC" not in sample.rails
        assert sample.watts == pytest.approx(sum(sample.rails.values()) - sample.rails["VDDQ_VDD2_1V8AO"])
        assert meter.info()["provenance"]["total_rule"] == "Jetson AGX Orin"
    finally:
        meter.close()


def test_thor_vin_is_the_board_input_and_a_negative_rail_passes(tmp_path):
    thor = [b for b in BOARDS if b.name == "Thor R38"][0]
    meter = open_meter("ina3221?root=" + thor.tree(str(tmp_path)))
    try:
        sample = meter.read()
        assert sample.rails["VDD_GPU"] == pytest.approx(-0.39) and sample.watts == pytest.approx(16.802)
        assert meter.info()["provenance"]["driver"] == ["ina238", "ina3221"]
    finally:
        meter.close()


def test_rail_sum_with_the_carrier_is_board_scope(tmp_path):
    root = iio_tree(str(tmp_path), TX2_DEVKIT)
    meter = open_meter("ina3221:VDD_IN+VDD_MUX?root=" + root)
    try:
        assert meter.read().watts == pytest.approx(3.140 + 2.100)
        assert meter.scope == "board" and meter.info()["provenance"]["total_rule"] == "user: VDD_IN+VDD_MUX"
    finally:
        meter.close()
    meter = open_meter("ina3221:VDD_SYS_GPU?root=" + root)
    try:
        assert meter.read().watts == pytest.approx(0.153) and meter.scope == "module"
    finally:
        meter.close()
    with pytest.raises(MeterUnavailable) as err:
        open_meter("ina3221:VDD_IN+VDD_MUXX?root=" + root)
    assert "VDD_MUXX" in str(err.value) and "VDD_MUX," in str(err.value)
    watts, _ = parse_line(BOARDS[0].line, ("VDD_IN", "VDD_SYS_GPU"))
    assert watts == pytest.approx(3.140 + 0.153)


def test_sensor_update_interval_caps_the_rate_and_is_recorded(tmp_path):
    orin = [b for b in BOARDS if b.name == "Orin Nano R36"][0]
    meter = open_meter("ina3221?root=" + orin.tree(str(tmp_path)))
    try:
        assert meter.rate_hz == pytest.approx(50.0) and meter.info()["update_period_s"] == pytest.approx(0.02)
    finally:
        meter.close()


def test_a_failed_node_read_skips_one_sample(tmp_path):
    root = iio_tree(str(tmp_path), {"0-0041": [("VDD_IN", 3140)]})
    node = os.path.join(root, "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device0/in_power0_input")
    os.remove(node)
    os.makedirs(node)  # read() on it fails with an OSError, as an I2C EIO does
    meter = open_meter("ina3221?root=" + root)
    try:
        with pytest.raises(NoReading):
            meter.read()
    finally:
        meter.close()


def _fake_tegrastats(folder, line):
    script = os.path.join(str(folder), "tegrastats")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\nwhile :; do echo '%s'; sleep 0.05; done\n" % line)
    os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
    return script


@pytest.mark.parametrize("board", [b for b in BOARDS if b.name in ("AGX Orin JP7.2", "Thor R38")], ids=repr)
def test_tegrastats_meter_fixes_the_rule_from_the_first_line(board, tmp_path):
    meter = open_meter("tegrastats?interval_s=0.05&cmd=%s" % _fake_tegrastats(tmp_path, board.line))
    try:
        assert meter.read().watts == pytest.approx(board.line_total_w)
        info = meter.info()
        assert info["scope"] == board.scope and info["update_period_s"] == pytest.approx(0.05)
        assert meter.rate_hz == pytest.approx(20.0)
    finally:
        meter.close()


def test_jtop_uses_the_interval_the_service_runs_at(monkeypatch):
    agx = [b for b in BOARDS if b.name == "AGX Orin JP7.2"][0]
    fake_jtop.install(monkeypatch, agx.jtop, served_s=2.0, version="7.2.1")
    meter = open_meter("jtop?interval_s=0.5")
    try:
        assert meter.rate_hz == pytest.approx(0.5) and meter.update_period_s == pytest.approx(2.0)
        assert meter.read().watts == pytest.approx(agx.jtop_total_w)
        info = meter.info()
        assert info["provenance"]["jtop_version"] == "7.2.1" and info["provenance"]["interval_served_s"] == 2.0
        assert any("another client" in note for note in info["notes"])
    finally:
        meter.close()
    fake_jtop.install(monkeypatch, agx.jtop, served_s=0.5)
    meter = open_meter("jtop:VDD_GPU_SOC+VDD_CPU_CV")
    try:
        assert meter.read().watts == pytest.approx(5.139 + 3.268) and "notes" not in meter.info()
    finally:
        meter.close()
