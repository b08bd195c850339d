"""INA3221 (L4T R32 iio layout, R35+ hwmon layout) and RAPL meters on sysfs trees in a temp folder."""
import os

import boards
import pytest
from meter_standins import make_rapl_tree, make_tx2_tree, set_uj, write

from hw.meters import MeterUnavailable, open_meter, probe
from hw.meters.ina3221 import find_rails

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


def make_orin_tree(root):
    """The R35+ mainline `ina3221` hwmon layout (inN_label, inN_input mV, currN_input mA, the in7 sum),
    with an unconnected channel labelled NC."""
    boards.hwmon_tree(root, {"1-0040": [("VDD_IN", 19080, 268), ("VDD_CPU_GPU_CV", 19104, 30),
                                        ("VDD_SOC", 19096, 74)]})
    write(os.path.join(root, "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1/in4_label"), "NC\n")
    return root


def test_tx2_iio_layout(tmp_path):
    root = make_tx2_tree(str(tmp_path))
    assert len(find_rails(root)[0]) == 6
    meter = open_meter("ina3221?root=" + root)
    try:
        s = meter.read()
        assert s.watts == pytest.approx(5.112)  # VDD_IN is the module input
        assert s.rails["VDD_SYS_GPU"] == pytest.approx(1.52) and len(s.rails) == 6
        info = meter.info()
        assert {k: info[k] for k in ("spec", "kind", "rate_hz", "counter", "where", "scope", "update_period_s")} == {
            "spec": "ina3221?root=" + root, "kind": "ina3221", "rate_hz": 1000.0, "counter": False,
            "where": "device", "scope": "module", "update_period_s": None}
        assert info["accuracy_rel"] == 0.005 and info["accuracy_abs_w"] == pytest.approx(0.08)
        assert info["provenance"]["driver"] == ["ina3221x"] and info["max_w"] == 250.0
    finally:
        meter.close()
    meter = open_meter("ina3221:VDD_SYS_GPU?root=" + root)
    try:
        assert meter.read().watts == pytest.approx(1.52)
    finally:
        meter.close()


def test_kept_descriptor_sees_rewritten_value(tmp_path):
    root = make_tx2_tree(str(tmp_path))
    node = os.path.join(root, "sys/bus/i2c/drivers/ina3221x/0-0041/iio:device1/in_power0_input")
    meter = open_meter("ina3221?root=" + root)
    try:
        assert meter.read().watts == pytest.approx(5.112)
        with open(node, "r+") as fh:  # in place, as sysfs regenerates the text
            fh.write("6200\n")
        assert meter.read().watts == pytest.approx(6.2)
    finally:
        meter.close()


def test_orin_hwmon_layout_skips_sum_and_nc(tmp_path):
    root = make_orin_tree(str(tmp_path))
    meter = open_meter("ina3221?root=" + root)
    try:
        s = meter.read()
        assert sorted(s.rails) == ["VDD_CPU_GPU_CV", "VDD_IN", "VDD_SOC"]
        assert s.watts == pytest.approx(19.080 * 0.268)
    finally:
        meter.close()


def test_ina3221_errors_name_path_and_rails(tmp_path):
    with pytest.raises(MeterUnavailable) as err:
        open_meter("ina3221?root=%s" % tmp_path)
    assert "INA3221" in str(err.value) and str(tmp_path) in str(err.value)
    root = make_tx2_tree(str(tmp_path))
    with pytest.raises(MeterUnavailable) as err:
        open_meter("ina3221:VDD_GPU?root=" + root)
    assert "VDD_SYS_GPU" in str(err.value)
    ok, why = probe("ina3221?root=%s/nothing" % tmp_path)
    assert not ok and "no INA3221/INA238" in why


def test_rapl_counter_sums_packages_and_unwraps(tmp_path):
    root = make_rapl_tree(str(tmp_path), max_range=10000000)
    meter = open_meter("rapl?root=" + root)
    try:
        assert meter.counter and meter.kind == "rapl"
        set_uj(root, "0", 3000000)
        s = meter.read()
        assert s.energy_j == pytest.approx(2.999)
        assert set(s.rails) == {"package-0", "package-0/core", "psys"}
        set_uj(root, "0", 500)  # wrapped: 3 J -> 10 J range end -> 0.0005 J
        s = meter.read()
        assert s.energy_j == pytest.approx(2.999 + (10000001 - 3000000 + 500) / 1e6)
    finally:
        meter.close()
    meter = open_meter("rapl?zone=psys&root=" + root)
    try:
        set_uj(root, "1", 4003000)
        assert meter.read().energy_j == pytest.approx(4.0)
    finally:
        meter.close()


def test_rapl_missing_and_unreadable(tmp_path):
    with pytest.raises(MeterUnavailable) as err:
        open_meter("rapl?root=%s" % tmp_path)
    assert "powercap" in str(err.value)
    if os.geteuid() == 0:
        pytest.skip("root reads any file: the permission message cannot be provoked")
    root = make_rapl_tree(str(tmp_path))
    os.chmod(os.path.join(root, "sys/class/powercap/intel-rapl:0/energy_uj"), 0)
    with pytest.raises(MeterUnavailable) as err:
        open_meter("rapl?root=" + root)
    assert "CVE-2020-8694" in str(err.value) and "chmod" in str(err.value)
