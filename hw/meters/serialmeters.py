"""Meters on a serial port (USB-serial, Bluetooth SPP, USB-TMC in serial mode), via pyserial.

All sit on the laptop in an SSH setup (`hw.meters.LAPTOP_KINDS`). Common options: `baud=N`,
`timeout=SECONDS` (how long silence lasts before a read gives up). A port that vanishes mid-run
(unplugged, pty closed) raises MeterDisconnected and the sampler reopens it by path: point the spec
at a stable udev name (`/dev/wattsup`, `/dev/serial/by-id/...`, see hw/jetson/README.md).

* `wattsup:PORT` - Watts Up? PRO / .NET (FTDI, 115200 8N1). Sources: the vendor's
  "Watts Up? Communications Protocol" (2009) as used by the public `wattsup` C utility
  (deater/uarch-configure) and Python loggers (jantman/misc-scripts `watts_up_pro_logger.py`).
  Commands are `#CMD,SUB,N,args...;`; `#L,W,3,E,,<interval>;` starts external logging and the
  meter then sends `#d,-,<n>,<W>,<V>,<A>,<WH>,...;` every interval, watts in tenths (field 3),
  volts in tenths (field 4). Paced: one record a second at most. Option `interval=S` (default 1).
* `um25c:PORT` - RD Tech UM24C / UM25C / UM34C USB meters (9600 8N1). Source: rfinnie/rdserialtool
  (`rdserial/um/__init__.py`). Writing one byte 0xF0 requests a 130-byte big-endian frame: volts at
  bytes 2-3 (UM25C 1 mV, UM24C/UM34C 10 mV), amps at 4-5 (UM25C 0.1 mA, others 1 mA), watts at
  6-9 (mW). Polled. Options `model=um24c|um25c|um34c` (default um25c), `rate=HZ` (default 5).
* `scpi:PORT` - an SCPI power analyser on RS-232/USB serial, e.g. Yokogawa WT300 (WT310/WT330).
  Source: Yokogawa WT300 series communication manual (IM WT310-17EN), as used by intel/yoko-tool.
  Defaults set up item 1 as active power P of element 1 in ASCII and query it:
  `init=:NUMERIC:FORMAT ASCII;:NUMERIC:NORMAL:NUMBER 1;:NUMERIC:NORMAL:ITEM1 P,1`,
  `query=:NUMERIC:NORMAL:VALUE? 1`; the first number of the reply is watts. Other instruments:
  set `query=` (e.g. `MEAS:POW?`) and `init=` (empty for none). Polled; `rate=HZ` (default 4,
  the WT300's 250 ms update interval). NAN/INF and 9.91E37 (SCPI "not a number") are malformed.
* `lines:PORT` - a DIY meter (INA219/INA260 + microcontroller) printing one reading per line.
  Options `field=N` (0-based, default 0), `sep=,|tab|space` (default `,`; `space` splits on any
  whitespace), `unit=W|mW|uW` (default W), `baud=N` (default 115200). Paced.
"""
import math
import os
import struct
import time

from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, NoReading,
                            Sample, now, option_float)

MAX_RECORD = 4096


def import_serial():
    try:
        import serial
    except ImportError:
        raise MeterUnavailable("serial meters need pyserial: `pip install pyserial` (module serial)")
    return serial


class SerialMeter(Meter):
    where = "laptop"
    default_baud = 9600
    default_timeout = 2.0

    def open(self):
        serial = import_serial()
        port = self.arg
        if not os.path.exists(port):
            raise MeterUnavailable("serial port %s does not exist: is the meter plugged in and powered? "
                                   "(see `ls /dev/serial/by-id/`)" % port)
        self._errors = (serial.SerialException, OSError)
        self.timeout = option_float(self.options, "timeout", self.default_timeout)
        try:
            self._ser = serial.Serial(port, baudrate=int(option_float(self.options, "baud", self.default_baud)),
                                      timeout=min(self.timeout, 0.25))
        except serial.SerialException as exc:
            if "ermission" in str(exc):
                raise MeterUnavailable("no permission to open %s: `sudo usermod -aG dialout $USER` and log in "
                                       "again (or install the udev rule in hw/jetson/)" % port)
            raise MeterUnavailable("cannot open serial port %s: %s" % (port, exc))
        self._buf = b""
        try:
            self.setup()
        except self._errors as exc:
            self.close()
            raise MeterDisconnected("%s: setup failed: %s" % (port, exc))

    def setup(self):
        """Protocol start-up after the port opens (start logging, configure the instrument)."""

    def write(self, data):
        try:
            self._ser.write(data)
            self._ser.flush()
        except self._errors as exc:
            raise MeterDisconnected("%s: write failed: %s" % (self.arg, exc))

    def read_record(self, term):
        """Bytes up to (not including) `term`; NoReading after `timeout` s of silence."""
        deadline = time.time() + self.timeout
        while term not in self._buf:
            if time.time() > deadline:
                raise NoReading("%s: nothing for %.1f s" % (self.arg, self.timeout))
            try:
                chunk = self._ser.read(max(1, self._ser.in_waiting))
            except self._errors as exc:
                raise MeterDisconnected("%s: read failed: %s" % (self.arg, exc))
            self._buf += chunk
            if len(self._buf) > MAX_RECORD:
                self._buf = b""
                raise MalformedReading("%s: %d bytes without a %r terminator" % (self.arg, MAX_RECORD, term))
        record, _, self._buf = self._buf.partition(term)
        return record

    def read_exact(self, size):
        deadline = time.time() + self.timeout
        data = b""
        while len(data) < size and time.time() < deadline:
            try:
                data += self._ser.read(size - len(data))
            except self._errors as exc:
                raise MeterDisconnected("%s: read failed: %s" % (self.arg, exc))
        return data

    def discard_input(self):
        self._buf = b""
        try:
            self._ser.reset_input_buffer()
        except self._errors as exc:
            raise MeterDisconnected("%s: %s" % (self.arg, exc))

    def close(self):
        ser, self._ser = getattr(self, "_ser", None), None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # a vanished device may fail to close; the handle is dropped either way
                pass


def parse_wattsup(record):
    """Watts from one Watts Up? record (bytes without the `;`); None for non-data replies."""
    text = record.decode("ascii", "replace").strip()
    start = text.find("#")
    if start < 0:
        raise MalformedReading("Watts Up? record without '#': %r" % text[:60])
    fields = text[start:].split(",")
    if fields[0] != "#d":
        return None
    try:
        return float(fields[3]) / 10.0
    except (IndexError, ValueError):
        raise MalformedReading("Watts Up? data record with no watts field: %r" % text[:60])


class WattsUpMeter(SerialMeter):
    kind = "wattsup"
    paced = True
    rate_hz = 1.0
    default_baud = 115200

    def setup(self):
        self.interval = max(1, int(option_float(self.options, "interval", 1)))
        self.rate_hz = 1.0 / self.interval
        self.timeout = max(self.timeout, 3.0 * self.interval)
        self.write(("#L,W,3,E,,%d;" % self.interval).encode("ascii"))

    def read(self):
        while True:
            watts = parse_wattsup(self.read_record(b";"))
            if watts is not None:
                return Sample(now(), watts, {})


UM_SCALES = {"um24c": (100.0, 1000.0), "um25c": (1000.0, 10000.0), "um34c": (100.0, 1000.0)}
UM_FRAME = 130
UM_REQUEST = b"\xf0"


def parse_um_frame(frame, model="um25c"):
    """{'volts', 'amps', 'watts'} from one 130-byte UM-series frame."""
    if len(frame) != UM_FRAME:
        raise MalformedReading("UM frame of %d bytes, expected %d" % (len(frame), UM_FRAME))
    _, volts, amps, mw = struct.unpack(">HHHI", frame[:10])
    v_scale, a_scale = UM_SCALES[model]
    return {"volts": volts / v_scale, "amps": amps / a_scale, "watts": mw / 1000.0}


class UmMeter(SerialMeter):
    kind = "um25c"

    def setup(self):
        self.model = self.options.get("model", "um25c").lower()
        if self.model not in UM_SCALES:
            raise ValueError("um25c option model=%s: allowed %s" % (self.model, ", ".join(sorted(UM_SCALES))))
        self.rate_hz = option_float(self.options, "rate", 5.0)
        self.timeout = min(self.timeout, 1.0)

    def read(self):
        self.discard_input()  # a late frame from a timed-out request would shift every later one
        self.write(UM_REQUEST)
        frame = self.read_exact(UM_FRAME)
        if not frame:
            raise NoReading("%s: no answer to 0xF0" % self.arg)
        values = parse_um_frame(frame, self.model)
        return Sample(now(), values["watts"], {})


SCPI_NAN = 9.9e37


def parse_scpi_number(reply):
    text = reply.decode("ascii", "replace").strip()
    try:
        value = float(text.split(",")[0].split(";")[0])
    except ValueError:
        raise MalformedReading("SCPI reply is not a number: %r" % text[:60])
    if math.isnan(value) or math.isinf(value) or abs(value) >= SCPI_NAN:
        raise MalformedReading("SCPI reply has no valid value: %r" % text[:60])
    return value


class ScpiMeter(SerialMeter):
    kind = "scpi"
    DEFAULT_INIT = ":NUMERIC:FORMAT ASCII;:NUMERIC:NORMAL:NUMBER 1;:NUMERIC:NORMAL:ITEM1 P,1"
    DEFAULT_QUERY = ":NUMERIC:NORMAL:VALUE? 1"

    def setup(self):
        self.query = self.options.get("query", self.DEFAULT_QUERY)
        init = self.options.get("init", self.DEFAULT_INIT if "query" not in self.options else "")
        self.rate_hz = option_float(self.options, "rate", 4.0)
        self.term = b"\n"
        if init:
            self.write(init.encode("ascii") + self.term)

    def read(self):
        self.discard_input()
        self.write(self.query.encode("ascii") + self.term)
        watts = parse_scpi_number(self.read_record(self.term))
        return Sample(now(), watts, {})


LINE_UNITS = {"w": 1.0, "mw": 1e-3, "uw": 1e-6}
LINE_SEPS = {",": ",", "comma": ",", ";": ";", "tab": "\t", "space": None, "ws": None}


class LineParser(object):
    """Watts from one text line: field `field` after splitting on `sep`, scaled from `unit`."""

    def __init__(self, options):
        self.field = int(option_float(options, "field", 0))
        sep = options.get("sep", ",")
        if sep not in LINE_SEPS:
            raise ValueError("lines option sep=%r: allowed %s" % (sep, ", ".join(sorted(LINE_SEPS))))
        self.sep = LINE_SEPS[sep]
        unit = options.get("unit", "W").lower()
        if unit not in LINE_UNITS:
            raise ValueError("lines option unit=%r: allowed W, mW, uW" % options.get("unit"))
        self.scale = LINE_UNITS[unit]

    def __call__(self, text):
        fields = text.split(self.sep) if self.sep else text.split()
        try:
            value = float(fields[self.field]) * self.scale
        except (IndexError, ValueError):
            raise MalformedReading("no number in field %d of %r" % (self.field, text[:60]))
        if math.isnan(value) or math.isinf(value):
            raise MalformedReading("not a finite number in %r" % text[:60])
        return value


class LinesMeter(SerialMeter):
    kind = "lines"
    paced = True
    rate_hz = 100.0
    default_baud = 115200

    def setup(self):
        self.parse = LineParser(self.options)

    def read(self):
        while True:
            text = self.read_record(b"\n").decode("ascii", "replace").strip()
            if text:
                return Sample(now(), self.parse(text), {})
