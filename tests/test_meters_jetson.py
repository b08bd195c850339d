"""jtop power dicts of both shapes, tegrastats lines of real boards, and a fake tegrastats on PATH."""
import os
import stat
import sys

import pytest

from hw.meters import MalformedReading, MeterUnavailable, open_meter
from hw.meters.jtop import power_to_watts
from hw.meters.tegrastats import parse_line
from boards import NANO_LINE, ORIN_NANO_LINE as ORIN_LINE, TX2_LINE, XAVIER_LINE

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)

# jetson-stats 4.x on a Jetson Orin Nano (JetPack 5): mV, mA, mW; tot is VDD_IN.
JTOP4_ORIN = {
    "rail": {
        "VDD_CPU_GPU_CV": {"online": True, "type": "INA3221", "status": "ok", "volt": 5008, "curr": 111,
                           "warn": 32760, "crit": 32760, "power": 555, "avg": 560},
        "VDD_SOC": {"online": True, "type": "INA3221", "status": "ok", "volt": 5000, "curr": 285,
                    "warn": 32760, "crit": 32760, "power": 1425, "avg": 1422},
    },
    "tot": {"online": True, "type": "INA3221", "status": "ok", "volt": 5000, "curr": 966,
            "warn": 32760, "crit": 32760, "power": 4830, "avg": 4802, "name": "VDD_IN"},
}
# jetson-stats 4.x on a board without an input rail (Xavier): tot is the sum, no name.
JTOP4_SUM = {"rail": {"GPU": {"volt": 1000, "curr": 300, "power": 300, "avg": 300},
                      "CPU": {"volt": 1000, "curr": 700, "power": 700, "avg": 650}},
             "tot": {"power": 1000, "avg": 950}}
# jetson-stats 3.x on a TX2 (JetPack 4.6): (total, rails) with cur/avg in mW.
JTOP3_TX2 = ({"cur": 5112, "avg": 4980},
             {"GPU": {"cur": 1520, "avg": 1401}, "SOC": {"cur": 762, "avg": 760},
              "WIFI": {"cur": 0, "avg": 0}, "CPU": {"cur": 1214, "avg": 1190},
              "DDR": {"cur": 840, "avg": 838}})


def test_jtop4_shape():
    watts, rails = power_to_watts(JTOP4_ORIN)
    assert watts == pytest.approx(4.83)
    assert rails == pytest.approx({"VDD_CPU_GPU_CV": 0.555, "VDD_SOC": 1.425, "VDD_IN": 4.83})
    watts, rails = power_to_watts(JTOP4_SUM)  # a layout no rule knows: the sum of every rail
    assert watts == pytest.approx(1.0) and rails == pytest.approx({"GPU": 0.3, "CPU": 0.7})


def test_jtop3_shape():
    watts, rails = power_to_watts(JTOP3_TX2)
    assert watts == pytest.approx(5.112) and rails["GPU"] == pytest.approx(1.52) and len(rails) == 5
    watts, _ = power_to_watts(({}, {"GPU": {"cur": 1000, "avg": 1}, "CPU": {"cur": 500, "avg": 1}}))
    assert watts == pytest.approx(1.5)


def test_jtop_unknown_shape_is_malformed():
    for value in (None, {}, [1, 2, 3], {"rail": {"X": {"power": "n/a"}}}, {"rail": {}, "tot": {}}):
        with pytest.raises(MalformedReading):
            power_to_watts(value)


def test_jtop_missing_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)
    with pytest.raises(MeterUnavailable) as err:
        open_meter("jtop")
    assert "jetson-stats" in str(err.value)


def test_tegrastats_lines_of_real_boards():
    watts, rails = parse_line(TX2_LINE)
    assert watts == pytest.approx(3.140) and len(rails) == 6 and rails["VDD_SYS_DDR"] == pytest.approx(0.557)
    assert "RAM" not in rails and "SWAP" not in rails
    watts, rails = parse_line(NANO_LINE)
    assert watts == pytest.approx(1.996) and set(rails) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    watts, rails = parse_line(XAVIER_LINE)
    assert watts == pytest.approx((120 + 468 + 937 + 312 + 1458) / 1000.0) and set(rails) == {
        "GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}
    watts, rails = parse_line(ORIN_LINE)
    assert watts == pytest.approx(4.834) and rails["VDD_SOC"] == pytest.approx(1.426) and len(rails) == 3
    with pytest.raises(MalformedReading):
        parse_line("RAM 2303/7854MB (lfb 1036x4MB) CPU [3%@345]")


def test_fake_tegrastats_executable(tmp_path):
    script = tmp_path / "tegrastats"
    script.write_text("#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\n"
                      "echo 'garbage'\necho '%s'\necho 'garbage'\necho '%s'\nsleep 5\n" % (TX2_LINE, TX2_LINE))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    meter = open_meter("tegrastats?interval_s=0.05&cmd=%s" % script)
    try:
        assert meter.rate_hz == 20.0 and meter.paced
        # open() used the first line with rails to pick the total: the next one is garbage.
        with pytest.raises(MalformedReading):
            meter.read()
        assert meter.read().watts == pytest.approx(3.140)
    finally:
        meter.close()
    with pytest.raises(MeterUnavailable) as err:
        open_meter("tegrastats?cmd=%s" % os.path.join(str(tmp_path), "nope"))
    assert "tegrastats" in str(err.value)
    quiet = tmp_path / "quiet"
    quiet.write_text("#!/bin/sh\necho 'RAM 2303/7854MB'\n")
    quiet.chmod(quiet.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(MeterUnavailable) as err:
        open_meter("tegrastats?cmd=%s" % quiet)
    assert "no power rails" in str(err.value)
