"""Meter specs, `none`, `auto`, and where each meter sits."""
import pytest

from hw.meters import KINDS, LAPTOP_KINDS, is_serial, open_meter, parse_spec
from test_meters_sysfs import make_tx2_tree


def test_parse_spec_kinds_args_options():
    assert parse_spec("ina3221:VDD_IN") == ("ina3221", "VDD_IN", {})
    assert parse_spec("wattsup:/dev/ttyUSB0?baud=115200") == ("wattsup", "/dev/ttyUSB0", {"baud": "115200"})
    kind, arg, opts = parse_spec("scpi:/dev/ttyUSB1?query=:NUMERIC:NORMAL:VALUE? 1&rate=2")
    assert (kind, arg, opts) == ("scpi", "/dev/ttyUSB1", {"query": ":NUMERIC:NORMAL:VALUE? 1", "rate": "2"})
    assert parse_spec("lines:/dev/ttyACM0?sep=%2C&unit=mW")[2] == {"sep": ",", "unit": "mW"}
    assert parse_spec("nvml:1") == ("nvml", "1", {})


def test_unknown_kind_names_the_allowed_ones():
    with pytest.raises(ValueError) as err:
        parse_spec("watsup:/dev/ttyUSB0")
    for kind in KINDS:
        assert kind in str(err.value)
    with pytest.raises(ValueError):
        open_meter("powermeter")
    with pytest.raises(ValueError):
        parse_spec("um25c")  # serial meters need a port


def test_none_and_serial_kinds():
    assert open_meter("none") is None
    assert is_serial("wattsup:/dev/ttyUSB0") and is_serial("lines:/dev/ttyACM0")
    assert not is_serial("ina3221") and not is_serial("auto")
    assert set(LAPTOP_KINDS) == {"wattsup", "um25c", "scpi", "lines"}


def test_auto_picks_ina3221_on_a_jetson_tree(tmp_path):
    root = make_tx2_tree(str(tmp_path))
    meter = open_meter("auto?root=" + root)
    try:
        assert meter.kind == "ina3221" and meter.spec == "ina3221?root=" + root
        assert meter.info()["notes"] == ["auto picked ina3221"]
    finally:
        meter.close()


def test_auto_without_meters_is_none_or_a_real_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no tegrastats
    meter = open_meter("auto?root=%s" % tmp_path)
    if meter is not None:  # a machine with an NVIDIA GPU
        assert meter.kind == "nvml"
        assert any("skipped ina3221" in n for n in meter.info()["notes"])
        meter.close()
