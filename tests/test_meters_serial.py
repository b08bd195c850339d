"""Serial meters through a real pseudo-terminal: the test plays the meter on the master side and
the real pyserial code in hw.meters.serialmeters talks to the slave, byte for byte.

The pty stand-ins live in tests/meter_standins.py.
"""
import struct
import sys
import threading
import time

import pytest

from hw.meters import MalformedReading, MeterUnavailable, NoReading, open_meter
from hw.meters.serialmeters import LineParser, parse_um_frame, parse_wattsup
from meter_standins import PtyPeer


@pytest.fixture
def peer():
    p = PtyPeer()
    yield p
    p.close()


def test_lines_meter_reads_fields_units_and_skips_garbage(peer):
    meter = open_meter("lines:%s?field=2&unit=mW&sep=," % peer.port)
    try:
        peer.write(b"bus_V,current_mA,power_mW\r\n5.02,398.1,1998.5\r\n\r\n5.01,401,2010\r\n")
        with pytest.raises(MalformedReading):
            meter.read()  # the header line is garbage to a numeric parser
        assert meter.read().watts == pytest.approx(1.9985)
        s = meter.read()
        assert s.watts == pytest.approx(2.010) and s.t == pytest.approx(time.time(), abs=2)
        assert meter.info()["where"] == "laptop" and meter.kind == "lines" and meter.paced
    finally:
        meter.close()


def test_lines_parser_options():
    assert LineParser({"sep": "space", "field": "1"})("t=1 3.5 W") == 3.5
    assert LineParser({"sep": "tab", "unit": "uW"})("2500000\tx") == pytest.approx(2.5)
    with pytest.raises(ValueError):
        LineParser({"unit": "kW"})
    with pytest.raises(MalformedReading):
        LineParser({})("nan")


def test_lines_meter_times_out_quietly(peer):
    meter = open_meter("lines:%s?timeout=0.3" % peer.port)
    try:
        with pytest.raises(NoReading):
            meter.read()
    finally:
        meter.close()


def test_wattsup_starts_external_logging_and_parses_records(peer):
    meter = open_meter("wattsup:" + peer.port)
    try:
        assert peer.read_until(b";") == b"#L,W,3,E,,1;"
        # A header reply is skipped, a data record gives tenths of a watt in field 3.
        peer.write(b"#h,-,18,W,V,A,WH,Cost,WH/Mo,Cost/Mo,Wmax,Vmax,Amax,Wmin,Vmin,Amin,PF,DC,PC,HZ,VA;\r\n")
        peer.write(b"#d,-,18,123,1203,105,0,_,_,_,_,_,_,_,_,_,98,_,_,600,125;\r\n")
        s = meter.read()
        assert s.watts == pytest.approx(12.3) and s.rails == {}
        peer.write(b"garbage;")
        with pytest.raises(MalformedReading):
            meter.read()
        assert meter.rate_hz == 1.0 and meter.paced
    finally:
        meter.close()


def test_parse_wattsup_rejects_short_record():
    with pytest.raises(MalformedReading):
        parse_wattsup(b"#d,-,18")
    assert parse_wattsup(b"\r\n#d,-,18,5000,2300,2200") == 500.0


def um_frame(volts_raw, amps_raw, mw, start=0x09C9):
    frame = bytearray(130)
    frame[0:10] = struct.pack(">HHHI", start, volts_raw, amps_raw, mw)
    frame[128:130] = b"\xff\xf1"
    return bytes(frame)


def test_um25c_request_and_frame(peer):
    meter = open_meter("um25c:%s?rate=5" % peer.port)
    answered = []

    def play():
        for mw in (2535, 4990):
            request = peer.read_exact(1)
            answered.append(request)
            peer.write(um_frame(5070, 5000, mw))

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    try:
        assert meter.read().watts == pytest.approx(2.535)
        assert meter.read().watts == pytest.approx(4.990)
        thread.join(3)
        assert answered == [b"\xf0", b"\xf0"]
        assert not meter.paced and meter.rate_hz == 5.0
    finally:
        meter.close()


def test_um_models_scale_volts_and_amps():
    frame = um_frame(5070, 5000, 2535)
    assert parse_um_frame(frame, "um25c") == {"volts": 5.07, "amps": 0.5, "watts": 2.535}
    assert parse_um_frame(frame, "um24c") == {"volts": 50.7, "amps": 5.0, "watts": 2.535}
    with pytest.raises(MalformedReading):
        parse_um_frame(frame[:100])


def test_scpi_initialises_then_queries(peer):
    meter = open_meter("scpi:%s?rate=2" % peer.port)

    def play():
        assert peer.read_until(b"\n") == b":NUMERIC:FORMAT ASCII;:NUMERIC:NORMAL:NUMBER 1;:NUMERIC:NORMAL:ITEM1 P,1\n"
        assert peer.read_until(b"\n") == b":NUMERIC:NORMAL:VALUE? 1\n"
        peer.write(b"1.2345E+01\n")
        peer.read_until(b"\n")
        peer.write(b"NAN\n")

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    try:
        assert meter.read().watts == pytest.approx(12.345)
        with pytest.raises(MalformedReading):
            meter.read()
    finally:
        thread.join(3)
        meter.close()


def test_scpi_custom_query_sends_no_default_init(peer):
    meter = open_meter("scpi:%s?query=MEAS:POW?" % peer.port)
    try:
        thread = threading.Thread(target=lambda: (peer.read_until(b"\n") == b"MEAS:POW?\n"
                                                  and peer.write(b"+7.5E+00,+1.0\n")), daemon=True)
        thread.start()
        assert meter.read().watts == 7.5
    finally:
        meter.close()


def test_missing_port_names_the_path(tmp_path):
    with pytest.raises(MeterUnavailable) as err:
        open_meter("wattsup:%s/ttyUSB9" % tmp_path)
    assert "ttyUSB9" in str(err.value) and "does not exist" in str(err.value)


def test_missing_pyserial_names_the_package(monkeypatch, peer):
    monkeypatch.setitem(sys.modules, "serial", None)  # `import serial` now raises ImportError
    with pytest.raises(MeterUnavailable) as err:
        open_meter("lines:" + peer.port)
    assert "pip install pyserial" in str(err.value)


def test_closed_pty_reads_as_disconnected(peer):
    from hw.meters import MeterDisconnected
    meter = open_meter("lines:%s?timeout=1" % peer.port)
    try:
        peer.close()
        with pytest.raises(MeterDisconnected):
            meter.read()
    finally:
        meter.close()
