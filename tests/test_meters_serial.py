"""Serial meters through a real pseudo-terminal: the test plays the meter on the master side and
the real pyserial code in hw.meters.serialmeters talks to the slave, byte for byte.

The pty stand-ins live in tests/meter_standins.py.
"""
import struct
import sys
import threading
import time

import pytest

from hw.energy import integrate
from hw.meters import MalformedReading, MeterSpecError, MeterUnavailable, NoReading, make_meter, open_meter
from hw.meters.serialmeters import UM34C_CHECKED, LineParser, parse_um_frame, parse_wattsup
from hw.sampler import PowerSampler
from hw.trace import read_trace
from meter_standins import PtyPeer

pytestmark = pytest.mark.board  # hw/ only: also run under the board's stack (dev.py)


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
    assert LineParser({"sep": "space", "field": 1})("t=1 3.5 W") == 3.5
    assert LineParser({"sep": "tab", "unit": "uw"})("2500000\tx") == pytest.approx(2.5)
    with pytest.raises(MalformedReading):
        LineParser({})("nan")
    with pytest.raises(MeterSpecError) as err:  # before the port is even looked at
        make_meter("lines:/dev/nonexistent?unit=kW")
    assert "unit" in str(err.value) and "mw" in str(err.value)


def test_lines_meter_times_out_quietly(peer):
    meter = open_meter("lines:%s?timeout_s=0.3" % peer.port)
    try:
        with pytest.raises(NoReading):
            meter.read()
    finally:
        meter.close()


def test_impossible_readings_are_malformed(peer):
    meter = open_meter("lines:%s?max_w=100" % peer.port)
    try:
        peer.write(b"1e308\n-5\ninf\n150\n42\n")
        for _ in range(4):
            with pytest.raises(MalformedReading):
                meter.read()
        assert meter.read().watts == 42.0
    finally:
        meter.close()


@pytest.mark.slow
def test_junk_and_impossible_lines_leave_the_good_lines_energy(peer, tmp_path):
    """Good 5 W lines mixed with 1e308, -5, inf and junk: the sampler drops the bad ones, energy stays 5 W."""
    junk = [b"1e308\n", b"-5\n", b"inf\n", b"#@!\n"]

    def stream(stop):
        k = 0
        while not stop.is_set():
            peer.write(b"5.000\n" if k % 2 == 0 else junk[(k // 2) % len(junk)])
            k += 1
            time.sleep(0.01)

    stop = threading.Event()
    thread = threading.Thread(target=stream, args=(stop,), daemon=True)
    thread.start()
    meter = open_meter("lines:" + peer.port)
    try:
        with PowerSampler(meter, str(tmp_path), rate_hz=100.0) as sampler:
            t0 = time.time()
            time.sleep(1.5)
            t1 = time.time()
        stats = sampler.stats()
    finally:
        stop.set()
        thread.join(2)
        meter.close()
    trace = read_trace(str(tmp_path))
    assert trace.watts.max() == 5.0 and trace.watts.min() == 5.0
    assert stats["malformed"] > 20  # about 50 bad lines a second, each counted, none written
    assert integrate(trace, t0, t1).energy_j == pytest.approx(5.0 * (t1 - t0), rel=0.03)


def wattsup_meter(peer, spec_tail=""):
    """Opens `wattsup:` while playing a meter that starts logging and sends its first record."""
    commands = []

    def play():
        commands.append(peer.read_until(b";"))
        commands.append(peer.read_until(b";"))
        peer.write(b"#d,-,18,100,1203,105,0,_,_,_,_,_,_,_,_,_,98,_,_,600,125;\r\n")

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    meter = open_meter("wattsup:" + peer.port + spec_tail)
    thread.join(3)
    return meter, commands


def test_wattsup_starts_logging_by_the_spec_and_parses_records(peer):
    meter, commands = wattsup_meter(peer)
    try:
        assert commands == [b"#R,W,0;", b"#L,W,3,E,1,1;"]  # no empty argument (vendor protocol rev 1.8)
        # A header reply is skipped, a data record gives tenths of a watt in field 3.
        peer.write(b"#h,-,18,W,V,A,WH,Cost,WH/Mo,Cost/Mo,Wmax,Vmax,Amax,Wmin,Vmin,Amin,PF,DC,PC,HZ,VA;\r\n")
        peer.write(b"#d,-,18,123,1203,105,0,_,_,_,_,_,_,_,_,_,98,_,_,600,125;\r\n")
        s = meter.read()
        assert s.watts == pytest.approx(12.3) and s.rails == {}
        peer.write(b"garbage;")
        with pytest.raises(MalformedReading):
            meter.read()
        info = meter.info()
        assert meter.rate_hz == 1.0 and meter.paced and info["scope"] == "wall" and info["accuracy_rel"] == 0.015
        assert info["update_period_s"] == 1.0
    finally:
        meter.close()


@pytest.mark.slow
def test_wattsup_that_never_logs_fails_at_open(peer):
    with pytest.raises(MeterUnavailable) as err:
        open_meter("wattsup:%s?timeout_s=0.3" % peer.port)
    assert "no data record" in str(err.value) and "#L,W,3,E,1,1;" in str(err.value)


def test_wattsup_silence_mid_run_resends_the_logging_command(peer):
    meter, _ = wattsup_meter(peer, "?timeout_s=0.3")
    try:
        with pytest.raises(NoReading):
            meter.read()
        assert peer.read_until(b";") == b"#L,W,3,E,1,1;"
    finally:
        meter.close()


def test_parse_wattsup_rejects_short_record():
    with pytest.raises(MalformedReading):
        parse_wattsup(b"#d,-,18")
    assert parse_wattsup(b"\r\n#d,-,18,5000,2300,2200") == 500.0


def um_frame(volts_raw, amps_raw, mw, model=0x09C9):
    frame = bytearray(130)
    frame[0:10] = struct.pack(">HHHI", model, volts_raw, amps_raw, mw)
    if model == 0x0D4C:  # UM34C: XOR of the listed bytes in the last byte (libsigrok rdtech-um)
        csum = 0
        for pos in UM34C_CHECKED:
            csum ^= frame[pos]
        frame[129] = csum
    else:
        frame[128:130] = b"\xff\xf1"
    return bytes(frame)


def test_um_meter_detects_the_model_and_polls(peer):
    answered = []

    def play():
        for mw in (1000, 2535, 4990):
            answered.append(peer.read_exact(1))
            peer.write(um_frame(5070, 5000, mw))

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    meter = open_meter("um25c:%s?rate_hz=5" % peer.port)
    try:
        assert meter.read().watts == pytest.approx(2.535)
        assert meter.read().watts == pytest.approx(4.990)
        thread.join(3)
        assert answered == [b"\xf0"] * 3
        # The meters update every 0.5 s: polling faster only repeats values.
        assert not meter.paced and meter.rate_hz == 2.0 and meter.info()["provenance"]["model"] == "um25c"
        assert meter.max_w == 120.0
    finally:
        meter.close()


def test_um_frames_are_checked():
    frame = um_frame(5070, 5000, 2535)
    assert parse_um_frame(frame) == ("um25c", {"volts": 5.07, "amps": 0.5, "watts": 2.535})
    assert parse_um_frame(um_frame(507, 500, 2535, model=0x0963))[1] == {"volts": 5.07, "amps": 0.5, "watts": 2.535}
    assert parse_um_frame(um_frame(507, 500, 2535, model=0x0D4C))[0] == "um34c"
    bad = [frame[:100], frame[:128] + b"\x00\x00", b"\x12\x34" + frame[2:],
           um_frame(507, 500, 2535, model=0x0D4C)[:129] + b"\x00"]
    for broken in bad:
        with pytest.raises(MalformedReading):
            parse_um_frame(broken)
    with pytest.raises(MalformedReading):
        parse_um_frame(frame, "um24c")  # pinned to another model


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
    meter = open_meter("lines:%s?timeout_s=1" % peer.port)
    try:
        peer.close()
        with pytest.raises(MeterDisconnected):
            meter.read()
    finally:
        meter.close()
