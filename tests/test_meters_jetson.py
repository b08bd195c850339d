"""jtop power dicts of both shapes, tegrastats lines of real boards, and a fake tegrastats on PATH."""
import os
import stat
import sys

import pytest

from hw.meters import MalformedReading, MeterUnavailable, open_meter
from hw.meters.jtop import power_to_watts
from hw.meters.tegrastats import parse_line

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
    watts, rails = power_to_watts(JTOP4_SUM)
    assert watts == pytest.approx(1.0) and rails == pytest.approx({"GPU": 0.3, "CPU": 0.7})


def test_jtop3_shape():
    watts, rails = power_to_watts(JTOP3_TX2)
    assert watts == pytest.approx(5.112) and rails["GPU"] == pytest.approx(1.52) and len(rails) == 5
    watts, _ = power_to_watts(({}, {"GPU": {"cur": 1000, "avg": 1}, "CPU": {"cur": 500, "avg": 1}}))
    assert watts == pytest.approx(1.5)


def test_jtop_unknown_shape_is_malformed():
    for value in (None, {}, [1, 2, 3], {"rail": {"X": {"power": "n/a"}}}):
        with pytest.raises(MalformedReading):
            power_to_watts(value)


def test_jtop_missing_package_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jtop", None)
    with pytest.raises(MeterUnavailable) as err:
        open_meter("jtop")
    assert "jetson-stats" in str(err.value)


TX2_LINE = ("RAM 2303/7854MB (lfb 1036x4MB) SWAP 0/3927MB (cached 0MB) CPU [3%@345,off,off,1%@345,1%@345,0%@345] "
            "EMC_FREQ 0%@1866 GR3D_FREQ 0%@114 APE 150 PLL@36.5C MCPU@36.5C PMIC@100C Tboard@32C GPU@34.5C "
            "BCPU@36.5C thermal@35.3C Tdiode@33.5C VDD_SYS_GPU 152/152 VDD_SYS_SOC 381/381 VDD_4V0_WIFI 0/0 "
            "VDD_IN 1752/1752 VDD_SYS_CPU 152/152 VDD_SYS_DDR 229/229")
NANO_LINE = ("RAM 1529/3964MB (lfb 124x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
             "CPU [8%@1479,2%@1479,0%@1479,0%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 PLL@31.5C "
             "CPU@33C PMIC@100C GPU@32.5C AO@40.5C thermal@32.75C POM_5V_IN 1996/1996 POM_5V_GPU 0/0 "
             "POM_5V_CPU 317/317")
XAVIER_LINE = ("RAM 3000/15823MB (lfb 2915x4MB) SWAP 0/7911MB (cached 0MB) CPU [1%@1190,0%@1190,off,off,off,off,"
               "off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@1377 APE 150 MTS fg 0% bg 0% AO@35C GPU@35.5C Tdiode@37.5C "
               "PMIC@100C AUX@34.5C CPU@36C thermal@35.65C Tboard@35C GPU 0/0 CPU 311/311 SOC 1087/1087 CV 0/0 "
               "VDDRQ 155/155 SYS5V 1779/1779")
ORIN_LINE = ("11-25-2026 11:40:00 RAM 2303/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@729,1%@729,"
             "0%@729,0%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] VIC_FREQ 115 APE 200 cpu@47.5C "
             "soc2@45.2C soc0@46.1C gpu@46.5C tj@47.5C soc1@46.4C VDD_IN 4834mW/4834mW "
             "VDD_CPU_GPU_CV 556mW/556mW VDD_SOC 1426mW/1426mW")


def test_tegrastats_lines_of_real_boards():
    watts, rails = parse_line(TX2_LINE)
    assert watts == pytest.approx(1.752) and len(rails) == 6 and rails["VDD_SYS_DDR"] == pytest.approx(0.229)
    assert "RAM" not in rails and "SWAP" not in rails
    watts, rails = parse_line(NANO_LINE)
    assert watts == pytest.approx(1.996) and set(rails) == {"POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"}
    watts, rails = parse_line(XAVIER_LINE)
    assert watts == pytest.approx((311 + 1087 + 155 + 1779) / 1000.0) and set(rails) == {
        "GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}
    watts, rails = parse_line(ORIN_LINE)
    assert watts == pytest.approx(4.834) and rails["VDD_SOC"] == pytest.approx(1.426) and len(rails) == 3
    with pytest.raises(MalformedReading):
        parse_line("RAM 2303/7854MB (lfb 1036x4MB) CPU [3%@345]")


def test_fake_tegrastats_executable(tmp_path):
    script = tmp_path / "tegrastats"
    script.write_text("#!/bin/sh\n[ \"$1\" = --interval ] || exit 2\n"
                      "echo 'garbage'\necho '%s'\nsleep 5\n" % TX2_LINE)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    meter = open_meter("tegrastats?interval=50&cmd=%s" % script)
    try:
        assert meter.rate_hz == 20.0 and meter.paced
        with pytest.raises(MalformedReading):
            meter.read()
        assert meter.read().watts == pytest.approx(1.752)
    finally:
        meter.close()
    with pytest.raises(MeterUnavailable) as err:
        open_meter("tegrastats?cmd=%s" % os.path.join(str(tmp_path), "nope"))
    assert "tegrastats" in str(err.value)
