"""The meter findings of the check against third-party data (research/meters-outside-2026-12.md), each on
the real line, layout or frame it was found on. Fixtures and their sources: tests/boards.py."""
import os
import stat

import pytest

import fake_jtop
from boards import JTOP_THOR_720, THOR_IDLE_LINE, THOR_IDLE_RAILS, thor_idle_tree
from hw.meters import MeterUnavailable, open_meter
from hw.meters.jtop import jtop_rails
from hw.meters.tegrastats import parse_line
from meter_standins import PtyPeer
from test_meters_serial import wattsup_meter


def fake_tegrastats(folder, lines):
    """A `tegrastats` that prints `lines` in order, then the last one again and again."""
    data = os.path.join(str(folder), "lines.txt")
    with open(data, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    script = os.path.join(str(folder), "tegrastats")
    with open(script, "w") as fh:
        fh.write("#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\ncat '%s'\nwhile :; do echo '%s'; sleep 0.05; done\n"
                 % (data, lines[-1]))
    os.chmod(script, os.stat(script).st_mode | stat.S_IEXEC)
    return script


def test_tegrastats_reads_thor_negative_gpu_rail(tmp_path):
    watts, rails = parse_line(THOR_IDLE_LINE)
    assert rails["VDD_GPU"] == pytest.approx(-0.392) and watts == pytest.approx(15.004)
    cmd = fake_tegrastats(tmp_path, [THOR_IDLE_LINE])
    meter = open_meter("tegrastats:VDD_GPU+VDD_CPU_SOC_MSS?interval_s=0.05&cmd=" + cmd)
    try:
        assert meter.read().watts == pytest.approx(-0.392 + 3.924)
    finally:
        meter.close()


def test_a_rail_that_appears_later_is_never_left_out_of_the_sum(tmp_path):
    # The 3-rail Thor (no VIN field) as the old parser saw it: VDD_GPU missing from the idle line.
    no_vin = THOR_IDLE_RAILS.split(" VIN ")[0]
    without_gpu = no_vin.replace("VDD_GPU -392mW/-392mW ", "")
    meter = open_meter("tegrastats?interval_s=0.05&cmd=" + fake_tegrastats(tmp_path, [without_gpu, no_vin]))
    try:
        assert meter.info()["provenance"]["total_rails"] == ["VDD_CPU_SOC_MSS", "VIN_SYS_5V0"]
        sample = meter.read()
        assert sample.watts == pytest.approx(-0.392 + 3.924 + 5.064)
        info = meter.info()
        assert info["provenance"]["total_rails"] == ["VDD_CPU_SOC_MSS", "VDD_GPU", "VIN_SYS_5V0"]
        assert any("rail VDD_GPU appeared after open" in n for n in info["notes"])
        assert info["sampling"]["kind"] == "point"
    finally:
        meter.close()


def test_jtop_720_on_thor_reads_vin_from_sysfs_not_the_partial_sum(monkeypatch, tmp_path):
    fake_jtop.install(monkeypatch, JTOP_THOR_720, served_s=0.5, version="7.2.0")
    root = thor_idle_tree(str(tmp_path))
    meter = open_meter("jtop?root=" + root)
    try:
        sample = meter.read()
        assert sample.watts == pytest.approx(15.004) and sample.rails["VIN"] == pytest.approx(15.004)
        info = meter.info()
        assert info["scope"] == "board" and info["provenance"]["total_rails"] == ["VIN"]
        assert info["provenance"]["vin_file"].endswith("ina238/2-0044/hwmon/hwmon9/power1_input")
        assert any("7.2.2" in n for n in info["notes"])
    finally:
        meter.close()
    # the module's rails when the spec names them
    meter = open_meter("jtop:VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0?root=" + root)
    try:
        assert meter.read().watts == pytest.approx(8.599) and meter.scope == "module"
    finally:
        meter.close()


def test_jtop_720_on_thor_without_a_readable_vin_refuses_with_the_fix(monkeypatch, tmp_path):
    fake_jtop.install(monkeypatch, JTOP_THOR_720, served_s=0.5, version="7.2.0")
    with pytest.raises(MeterUnavailable) as err:
        open_meter("jtop?root=" + thor_idle_tree(str(tmp_path), vin=False))
    text = str(err.value)
    assert "7.2.0" in text and "jetson-stats>=7.2.2" in text and "--meter ina3221" in text


def test_jtop_takes_the_instantaneous_power_not_the_running_average(monkeypatch):
    power = {"rail": {"VDD_CPU_GPU_CV": {"power": 555, "avg": 9999}},
             "tot": {"power": 4835, "avg": 1111, "name": "VDD_IN"}}
    assert jtop_rails(power)[0] == {"VDD_CPU_GPU_CV": 0.555, "VDD_IN": 4.835}
    fake_jtop.install(monkeypatch, power, served_s=0.5)
    meter = open_meter("jtop")
    try:
        assert meter.interval >= 0.5 and meter.read().watts == pytest.approx(4.835)
        assert meter.info()["sampling"]["kind"] == "point"
    finally:
        meter.close()


def test_wattsup_stops_external_logging_on_close():
    peer = PtyPeer()
    try:
        meter, commands = wattsup_meter(peer)
        assert commands == [b"#R,W,0;", b"#L,W,3,E,1,1;"]
        assert meter.info()["sampling"] == {"kind": "average", "window_s": 1.0,
                                            "source": "Watts Up? logs one record per logging interval, "
                                                      "averaged over it"}
        meter.close()
        assert peer.read_until(b";") == b"#L,W,0;"  # energymon's stop: the meter is not left streaming
    finally:
        peer.close()


def test_jtop_sum_takes_a_rail_that_comes_online_later(monkeypatch):
    # jtop lists /sys/class/power_supply entries as rails (jetson_stats #900): one may appear mid-run.
    power = {"rail": {"VDD_A": {"power": 1000, "avg": 1000}, "VDD_B": {"power": 2000, "avg": 2000}},
             "tot": {"power": 3000, "avg": 3000}}
    fake_jtop.install(monkeypatch, power, served_s=0.5)
    meter = open_meter("jtop")
    try:
        assert meter.read().watts == pytest.approx(3.0)
        power["rail"]["VDD_C"] = {"power": 500, "avg": 500}
        assert meter.read().watts == pytest.approx(3.5)
        assert any("rail VDD_C appeared after open" in n for n in meter.info()["notes"])
    finally:
        meter.close()
