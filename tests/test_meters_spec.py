"""Meter specs, `none`, `auto`, and where each meter sits."""
import pytest

from hw.meters import (KINDS, LAPTOP_KINDS, MalformedReading, Meter, MeterSpecError, is_serial, make_meter,
                       open_meter, parse_spec, where)
from hw.meters import meter_class
from hw.meters.base import SCOPES, Sample
from meter_standins import make_tx2_tree

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


def test_parse_spec_kinds_args_options():
    assert parse_spec("ina3221:VDD_IN") == ("ina3221", "VDD_IN", {})
    assert parse_spec("wattsup:/dev/ttyUSB0?baud=115200") == ("wattsup", "/dev/ttyUSB0", {"baud": "115200"})
    kind, arg, opts = parse_spec("scpi:/dev/ttyUSB1?query=:NUMERIC:NORMAL:VALUE? 1&rate_hz=2")
    assert (kind, arg, opts) == ("scpi", "/dev/ttyUSB1", {"query": ":NUMERIC:NORMAL:VALUE? 1", "rate_hz": "2"})
    assert parse_spec("scpi:TCPIP::10.0.0.5::10001::SOCKET") == ("scpi", "TCPIP::10.0.0.5::10001::SOCKET", {})
    assert parse_spec("ina3221:VDD_IN+VDD_MUX") == ("ina3221", "VDD_IN+VDD_MUX", {})
    assert parse_spec("lines:/dev/ttyACM0?sep=%2C&unit=mW")[2] == {"sep": ",", "unit": "mW"}
    assert parse_spec("nvml:1") == ("nvml", "1", {})


def test_unknown_kind_names_the_allowed_ones():
    with pytest.raises(MeterSpecError) as err:
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
    assert where("scpi:tcp://h:5025") == "laptop" and where("jtop") == "device" and where("none") == "device"


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


@pytest.mark.parametrize("spec, words", [
    ("wattsup:/dev/nonexistent?interval=2", ["interval_s"]),           # renamed: units in the name
    ("um25c:/dev/nonexistent?rate_hz=fast", ["rate_hz", "fast"]),
    ("lines:/dev/nonexistent?sep=pipe", ["sep", "tab"]),
    ("tegrastats?interval_s=-1", ["interval_s"]),
    ("ina3221:VDD_IN++VDD_MUX", ["VDD_IN+VDD_MUX"]),
    ("rapl?zone=x&colour=red", ["colour", "zone"]),
    ("nvml:first", ["GPU index"]),
    ("jtop?max_w=inf", ["max_w"]),
])
def test_bad_options_fail_before_any_port_is_opened(spec, words):
    with pytest.raises(MeterSpecError) as err:
        make_meter(spec)  # the ports do not exist: a MeterUnavailable would mean one was looked at
    assert all(w in str(err.value) for w in words)


def test_every_kind_declares_its_scope_and_options():
    for kind, entry in KINDS.items():
        cls = meter_class(kind)
        assert cls.kind == kind and cls.where == entry.where and isinstance(cls.OPTIONS, dict)
        assert cls.scope in SCOPES or kind in ("ina3221", "jtop", "tegrastats")  # set from the rail rule


class _Fixed(Meter):
    kind = "fixed"
    max_w = 100.0

    def __init__(self, watts, rails=None):
        super().__init__("fixed")
        self.watts, self.rails = watts, rails or {}

    def read_sample(self):
        return Sample(0.0, self.watts, self.rails)


@pytest.mark.parametrize("watts, rails", [(float("nan"), {}), (float("inf"), {}), (-5.0, {}), (1e308, {}),
                                          (101.0, {}), (5.0, {"GPU": float("nan")}), (5.0, {"GPU": 1e9})])
def test_readings_outside_the_physical_range_are_malformed(watts, rails):
    with pytest.raises(MalformedReading):
        _Fixed(watts, rails).read()


def test_a_slightly_negative_rail_is_a_reading():
    assert _Fixed(5.0, {"VDD_GPU": -0.39}).read().rails == {"VDD_GPU": -0.39}
