"""SCPI analysers through PyVISA + pyvisa-py against a fake WT310/WT210 on 127.0.0.1 (tests/fake_scpi.py)."""
import pytest

from hw.meters import MalformedReading, MeterSpecError, MeterUnavailable, is_serial, make_meter, open_meter
from hw.meters.scpi import visa_resource

pytest.importorskip("pyvisa")
pytest.importorskip("pyvisa_py")

from fake_scpi import FakeAnalyser  # noqa: E402

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


@pytest.fixture
def analyser():
    fakes = []

    def make(watts, **kw):
        fake = FakeAnalyser(watts, **kw)
        fakes.append(fake)
        return fake, fake.start()

    yield make
    for fake in fakes:
        fake.stop()


def test_resource_forms():
    assert visa_resource("tcp://10.0.0.5:10001") == "TCPIP::10.0.0.5::10001::SOCKET"
    assert visa_resource("/dev/ttyUSB0") == "ASRL/dev/ttyUSB0::INSTR"
    assert visa_resource("USB0::0x0B21::0x0025::C2QB0::INSTR") == "USB0::0x0B21::0x0025::C2QB0::INSTR"
    assert visa_resource("TCPIP::wt310.lab::INSTR") == "TCPIP::wt310.lab::INSTR"
    with pytest.raises(MeterSpecError):
        make_meter("scpi:wt310.lab")
    with pytest.raises(MeterSpecError):
        make_meter("scpi:tcp://h:1?model=wt9000")
    assert is_serial("scpi:tcp://10.0.0.5:5025") and is_serial("scpi:USB0::1::2::3::INSTR")


def test_wt310_setup_update_rate_and_reads(analyser):
    fake, port = analyser(lambda t: 12.345, update_s=0.25)
    meter = open_meter("scpi:tcp://127.0.0.1:%d" % port)
    try:
        assert meter.read().watts == pytest.approx(12.345)
        assert fake.commands[:7] == ["*IDN?", "*CLS", ":COMM:HEAD OFF", ":SYST:COMM:COMM WT300", ":NUM:FORM ASCII",
                                     ":NUM:NORM:NUM 1", ":NUM:NORM:ITEM1 P,1"]
        assert fake.commands[7:] == [":SAMP:RATE?", ":INP:VOLT:RANG?", ":INP:CURR:RANG?", ":NUM:NORM:VAL?"]
        info = meter.info()
        assert meter.rate_hz == pytest.approx(4.0) and info["update_period_s"] == pytest.approx(0.25)
        # a Yokogawa value is the mean over its update interval; 0.05 % of the 150 V x 0.5 A range
        assert info["sampling"]["kind"] == "average" and info["sampling"]["window_s"] == pytest.approx(0.25)
        assert info["accuracy_abs_w"] == pytest.approx(0.0375) and info["provenance"]["range_w"] == 75.0
        assert info["scope"] == "wall" and info["where"] == "laptop" and info["accuracy_rel"] == 0.01
        assert info["provenance"]["idn"].startswith("YOKOGAWA,WT310")
        assert info["provenance"]["resource"] == "TCPIP::127.0.0.1::%d::SOCKET" % port
    finally:
        meter.close()


def test_invalid_and_impossible_values_are_malformed(analyser):
    values = iter([None, -3.0, 1e30, 7.5])
    fake, port = analyser(lambda t: next(values), model="wt210")
    meter = open_meter("scpi:TCPIP::127.0.0.1::%d::SOCKET?model=wt210" % port)
    try:
        for _ in range(3):
            with pytest.raises(MalformedReading):
                meter.read()
        assert meter.read().watts == 7.5
        assert ":MEAS:ITEM:W ON" in fake.commands and fake.commands[-1] == ":MEAS:VAL?"
    finally:
        meter.close()


@pytest.mark.slow
def test_generic_query_and_unreachable_instrument(analyser):
    fake, port = analyser(lambda t: 3.0)
    fake.answer = lambda command: "+3.0E+00,+1.0" if command == "MEAS:POW?" else None
    meter = open_meter("scpi:tcp://127.0.0.1:%d?query=MEAS:POW?&timeout_s=0.3" % port)
    try:
        assert meter.read().watts == 3.0 and meter.info()["accuracy_rel"] is None
        assert "*CLS" not in fake.commands
    finally:
        meter.close()
    fake.stop()
    with pytest.raises(MeterUnavailable) as err:
        open_meter("scpi:tcp://127.0.0.1:%d?timeout_s=0.3" % port)
    assert "127.0.0.1" in str(err.value)


def test_wt310_slightly_negative_reading_is_zero_within_its_accuracy(analyser):
    # The WT310 reply -0.012E+00 (pyvisa-sim check, research/meters-outside-2026-12.md): zero load read
    # a little below zero, inside the meter's +-0.0375 W range term; -0.5 W is beyond it and stays malformed.
    values = iter([-0.012, -0.5, 4.0])
    fake, port = analyser(lambda t: next(values))
    meter = open_meter("scpi:tcp://127.0.0.1:%d" % port)
    try:
        assert meter.read().watts == 0.0
        with pytest.raises(MalformedReading) as err:
            meter.read()
        assert "negative" in str(err.value)
        assert meter.read().watts == 4.0 and meter.info()["zero_clamped"] == 1
    finally:
        meter.close()


def test_a_resource_the_backend_refuses_is_a_clear_error():
    # pyvisa-sim raised a bare ValueError for `scpi:/dev/...` (research/meters-outside-2026-12.md, Table 4);
    # the real pyvisa-py does the same for GPIB without linux-gpib, and a bare Exception for a bad port.
    for spec, resource in (("scpi:GPIB0::9::INSTR", "GPIB0::9::INSTR"),
                           ("scpi:TCPIP::127.0.0.1::99999::SOCKET", "TCPIP::127.0.0.1::99999::SOCKET")):
        with pytest.raises(MeterUnavailable) as err:
            open_meter(spec)
        assert resource in str(err.value) and "scpi:tcp://HOST:PORT" in str(err.value)
