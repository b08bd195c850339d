"""Meters on a serial port (USB-serial, Bluetooth SPP), via pyserial. SCPI analysers: `hw.meters.scpi`.

All sit on the laptop in an SSH setup and measure outside the board (scope `wall`). Common options:
`baud=N`, `timeout_s=S` (how long silence lasts before a read gives up). A port that vanishes mid-run
(unplugged, pty closed) raises MeterDisconnected and the sampler reopens it by path: point the spec
at a stable udev name (`/dev/wattsup`, `/dev/serial/by-id/...`, see hw/jetson/README.md).

* `wattsup:PORT` - Watts Up? PRO / .NET (FTDI, 115200 8N1). Source: the vendor's "Watts Up?
  Communications Protocol" rev 1.8 (in connorimes/energymon `wattsup/etc/`): packets `#C1,C2,N,args;`
  with no empty argument allowed; `#R,W,0;` resets, `#L,W,3,E,1,<interval>;` starts external logging,
  then `#d,-,18,<W>,<V>,<A>,...;` every interval, watts in tenths (field 3). Paced, one record a second
  at most. Open waits for the first record (re-sending the logging command once) and fails with a
  clear message when none comes; mid-run, silence re-sends it; close sends `#L,W,0;` (logging off, as
  energymon does) so the meter is not left streaming. Option `interval_s=S` (default 1). Each record
  is taken as the mean over its logging interval (the meter samples internally and logs per interval).
* `um25c:PORT` - RD Tech UM24C / UM25C / UM34C (9600 baud; Bluetooth SPP on the C models). Sources:
  rfinnie/rdserialtool `rdserial/um/__init__.py`, libsigrok `src/hardware/rdtech-um/protocol.c`.
  Byte 0xF0 requests a 130-byte big-endian frame: model id at bytes 0-1 (UM24C 0x0963, UM25C 0x09c9,
  UM34C 0x0d4c), volts at 2-3, amps at 4-5, watts at 6-9 (mW); UM24C/UM25C end with 0xFFF1, UM34C
  with an XOR checksum. A frame with a wrong id, end marker or checksum is malformed. The model is
  taken from the first frame (`model=` pins it). Polled at most 2 Hz: the meters update every 0.5 s
  (kolinger/rd-usb #54). Option `rate_hz=` (default 2).
* `lines:PORT` - a DIY meter (INA219/INA260 + microcontroller) printing one reading per line.
  Options `field=N` (0-based, default 0), `sep=,|;|tab|space` (default `,`), `unit=W|mW|uW`
  (default W), `baud=N` (default 115200), `max_w=` (default 10 kW). Paced.
"""
import math
import os
import struct
import time

from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, NoReading, Sample,
                            choice, now, positive, whole)

MAX_RECORD = 4096


def import_serial():
    try:
        import serial
    except ImportError:
        raise MeterUnavailable("serial meters need pyserial: `pip install pyserial` (module serial)")
    return serial


class SerialMeter(Meter):
    where = "laptop"
    scope = "wall"
    default_baud = 9600
    default_timeout_s = 2.0
    OPTIONS = {"baud": whole, "timeout_s": positive}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.timeout = self.options.get("timeout_s", self.default_timeout_s)
        self._ser = None
        self._buf = b""
        self._errors = (OSError,)

    def open(self):
        serial = import_serial()
        port = self.arg
        if not os.path.exists(port):
            raise MeterUnavailable("serial port %s does not exist: is the meter plugged in and powered? "
                                   "(see `ls /dev/serial/by-id/`)" % port)
        self._errors = (serial.SerialException, OSError)
        try:
            self._ser = serial.Serial(port, baudrate=self.options.get("baud", self.default_baud),
                                      timeout=min(self.timeout, 0.25))
        except PermissionError:
            raise MeterUnavailable("no permission to open %s: `sudo usermod -aG dialout $USER` and log in "
                                   "again (or install the udev rule in hw/jetson/)" % port)
        except self._errors as exc:
            raise MeterUnavailable("cannot open serial port %s: %s" % (port, exc))
        self._buf = b""
        try:
            self.setup()
        except (MeterDisconnected, NoReading) as exc:
            self.close()
            raise MeterUnavailable("%s: the meter did not answer: %s" % (port, exc))
        except MeterUnavailable:
            self.close()
            raise

    def setup(self):
        """Protocol start-up after the port opens (start logging, identify the model)."""

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
        ser, self._ser = self._ser, None
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


STOP_LOGGING = b"#L,W,0;"


class WattsUpMeter(SerialMeter):
    kind = "wattsup"
    paced = True
    rate_hz = 1.0
    default_baud = 115200
    # Watts Up? PRO product sheet: +-1.5 % + 3 counts; a count is 0.1 W.
    accuracy_rel = 0.015
    accuracy_abs_w = 0.3
    accuracy_source = "Watts Up? PRO product sheet: +-1.5 % + 3 counts"
    max_w = 1800.0  # the meter's 15 A x 120 V rating
    sampling_source = "Watts Up? logs one record per logging interval, averaged over it"
    OPTIONS = dict(SerialMeter.OPTIONS, interval_s=whole)

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.interval = max(1, self.options.get("interval_s", 1))
        self.rate_hz = 1.0 / self.interval
        self.update_period_s = float(self.interval)
        self.sampling, self.sampling_window_s = "average", float(self.interval)
        self.timeout = self.options.get("timeout_s", 3.0 * self.interval)
        self.command = ("#L,W,3,E,1,%d;" % self.interval).encode("ascii")
        self.provenance = {"port": arg, "command": self.command.decode("ascii")}

    def setup(self):
        self.write(b"#R,W,0;")
        for _ in range(2):
            self.write(self.command)
            try:
                self._next_watts()
                return
            except NoReading:
                continue
        raise MeterUnavailable("Watts Up? on %s sent no data record within %.0f s of %s (twice): is it a Watts "
                               "Up? PRO or .NET (the plain model has no data port)? Power-cycle it and retry"
                               % (self.arg, 2 * self.timeout, self.command.decode("ascii")))

    def _next_watts(self):
        while True:
            watts = parse_wattsup(self.read_record(b";"))
            if watts is not None:
                return watts

    def read_sample(self):
        try:
            return Sample(now(), self._next_watts(), {})
        except NoReading:
            self.write(self.command)  # the meter may have dropped out of logging mode (power blip)
            raise

    def close(self):
        if self._ser is not None:
            try:
                self.write(STOP_LOGGING)
            except MeterDisconnected:  # the meter is gone: nothing is logging to this port any more
                pass
        super().close()


UM_MODELS = {0x0963: "um24c", 0x09C9: "um25c", 0x0D4C: "um34c"}
UM_SCALES = {"um24c": (100.0, 1000.0), "um25c": (1000.0, 10000.0), "um34c": (100.0, 1000.0)}
# Each model's range in W: UM24C 24 V x 3 A, UM25C 24 V x 5 A, UM34C 24 V x 4 A.
UM_MAX_W = {"um24c": 72.0, "um25c": 120.0, "um34c": 96.0}
UM_FRAME = 130
UM_REQUEST = b"\xf0"
UM34C_CHECKED = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83, 89,
                 97, 99, 109, 111, 113, 119, 121, 127)


def um_frame_ok(frame, model):
    if model == "um34c":
        csum = 0
        for pos in UM34C_CHECKED:
            csum ^= frame[pos]
        return csum == frame[-1]
    return frame[-2:] == b"\xff\xf1"


def parse_um_frame(frame, model=None):
    """(model, {'volts', 'amps', 'watts'}) from one checked 130-byte frame; `model` pins the model."""
    if len(frame) != UM_FRAME:
        raise MalformedReading("UM frame of %d bytes, expected %d" % (len(frame), UM_FRAME))
    ident, volts, amps, mw = struct.unpack(">HHHI", frame[:10])
    found = UM_MODELS.get(ident)
    if found is None or (model and found != model):
        raise MalformedReading("UM frame with model id 0x%04x, expected %s" % (ident, model or "a UM24C/25C/34C"))
    if not um_frame_ok(bytearray(frame), found):
        raise MalformedReading("UM frame with a bad %s" % ("checksum" if found == "um34c" else "end marker"))
    v_scale, a_scale = UM_SCALES[found]
    return found, {"volts": volts / v_scale, "amps": amps / a_scale, "watts": mw / 1000.0}


class UmMeter(SerialMeter):
    kind = "um25c"
    rate_hz = 2.0
    update_period_s = 0.5
    # No vendor power accuracy was found: 1 % plus one 10 mW count is a conservative class.
    accuracy_rel = 0.01
    accuracy_abs_w = 0.01
    accuracy_source = "conservative: RD Tech publishes no power accuracy"
    sampling_source = "RD Tech publishes no averaging: a reading is taken as a point sample"
    OPTIONS = dict(SerialMeter.OPTIONS, model=choice(*sorted(UM_SCALES)), rate_hz=positive)

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.timeout = min(self.timeout, 1.0)
        self.rate_hz = min(self.options.get("rate_hz", 2.0), 1.0 / self.update_period_s)
        self.model = self.options.get("model")

    def setup(self):
        self.model = self._poll()[0]
        self.max_w = self.options.get("max_w", UM_MAX_W[self.model])
        self.provenance = {"port": self.arg, "model": self.model}

    def _poll(self):
        self.discard_input()  # a late frame from a timed-out request would shift every later one
        self.write(UM_REQUEST)
        frame = self.read_exact(UM_FRAME)
        if not frame:
            raise NoReading("%s: no answer to 0xF0" % self.arg)
        return parse_um_frame(frame, self.model)

    def read_sample(self):
        return Sample(now(), self._poll()[1]["watts"], {})


LINE_UNITS = {"w": 1.0, "mw": 1e-3, "uw": 1e-6}
LINE_SEPS = {",": ",", "comma": ",", ";": ";", "tab": "\t", "space": None, "ws": None}


class LineParser:
    """Watts from one text line: field `field` after splitting on `sep`, scaled from `unit`."""

    def __init__(self, options):
        self.field = options.get("field", 0)
        self.sep = LINE_SEPS[options.get("sep", ",")]
        self.scale = LINE_UNITS[options.get("unit", "w")]

    def __call__(self, text):
        fields = text.split(self.sep) if self.sep else text.split()
        try:
            value = float(fields[self.field]) * self.scale
        except (IndexError, ValueError):
            raise MalformedReading("no number in field %d of %r" % (self.field, text[:60]))
        if not math.isfinite(value):
            raise MalformedReading("not a finite number in %r" % text[:60])
        return value


class LinesMeter(SerialMeter):
    kind = "lines"
    paced = True
    rate_hz = 100.0
    default_baud = 115200
    max_w = 10000.0  # above any bench supply or household circuit: a reading beyond it is noise
    sampling_source = "a DIY meter does not say how it averages: point samples"
    OPTIONS = dict(SerialMeter.OPTIONS, field=whole, sep=choice(*sorted(LINE_SEPS)),
                   unit=choice(*sorted(LINE_UNITS)))

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.parse = LineParser(self.options)
        self.provenance = {"port": arg}

    def read_sample(self):
        while True:
            text = self.read_record(b"\n").decode("ascii", "replace").strip()
            if text:
                return Sample(now(), self.parse(text), {})
