"""SCPI power analysers through PyVISA with the pure-Python pyvisa-py backend (`scpi:RESOURCE`).

An analyser hangs off the laptop (LAN, USB-TMC or RS-232); PyVISA is imported only when one is
opened, so `hw/` stays importable on a board without it. Resource forms:

* a VISA resource as is: `scpi:TCPIP::HOST::PORT::SOCKET` (raw SCPI over TCP, e.g. port 5025 or a
  Yokogawa's 10001), `scpi:TCPIP::HOST::INSTR` (VXI-11), `scpi:USB0::0x0B21::0x0025::SERIAL::INSTR`
  (USB-TMC), `scpi:ASRL/dev/ttyUSB0::INSTR`;
* shorthands: `scpi:tcp://HOST:PORT` -> `TCPIP::HOST::PORT::SOCKET`, `scpi:/dev/ttyUSB0` ->
  `ASRL/dev/ttyUSB0::INSTR`.

Options: `model=wt310|wt210|generic` (default wt310; generic when only `query=` is given), `query=`
and `init=` (override the model's; `init` commands separated by `|`), `rate_hz=` (default 10, capped
by the analyser's update interval),
`timeout_s=`, `baud=` (serial only). Set-up per model (sources: intel/yoko-tool `yokolibs/_wt310.py`,
`_wt210.py`, `_yokobase.py`; MLPerf power-dev `power_meter_sampling/samplers/yokogawa.py`):

* wt310 (WT310/WT310E/WT330, WT300 command set): `*CLS`, `:COMM:HEAD OFF`, `:SYST:COMM:COMM WT300`,
  `:NUM:FORM ASCII`, `:NUM:NORM:NUM 1`, `:NUM:NORM:ITEM1 P,1`; reads `:NUM:NORM:VAL?`; the update
  interval `:SAMP:RATE?` (0.1 to 5 s) caps the polling rate and is recorded.
* wt210 (WT200 command set; the front panel must be in "488.2" mode): `*CLS`, `:COMM:HEAD OFF`,
  `:COMM:REM ON`, items V and A off and W on; reads `:MEAS:VAL?`.
* generic: no set-up, reads `MEAS:POW?` (Keysight N67xx wants `MEAS:POW? (@1)`, Rigol DP800
  `:MEAS:POWE? CH1`: pass `query=`).

The first number of the reply is watts; NAN/INF and 9.91E37 (SCPI "not a number") are malformed. A
Yokogawa's value is the average over its data update interval (`:SAMP:RATE?`, recorded as the sampling
window); a generic instrument does not say, and counts as a point sample.
"""
import re

from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterSpecError, MeterUnavailable,
                            NoReading, Sample, choice, now, positive, text, whole)

SCPI_NAN = 9.9e37
TCP_SHORT = re.compile(r"^tcp://([^:/\s]+):(\d+)/?$")
VISA_RESOURCE = re.compile(r"^(TCPIP\d*|USB\d*|ASRL|GPIB\d*)[^\s]*::", re.I)


class Model:
    """What one analyser family needs: set-up commands, the power query, its accuracy and range."""

    def __init__(self, name, init, query, rate_query=None, accuracy_rel=None, max_w=None, range_queries=(),
                 range_rel=None):
        self.name, self.init, self.query, self.rate_query = name, init, query, rate_query
        self.accuracy_rel, self.max_w = accuracy_rel, max_w
        self.range_queries, self.range_rel = range_queries, range_rel


# Accuracy: MLPerf Power's checker (power-dev `compliance/check.py`) accepts a Yokogawa sample only up
# to 1.00 % uncertainty; that bound is the class used here. Range: 600 V x 40 A (WT310EH) and
# 600 V x 20 A (WT210). Zero error: the WT310E's active power accuracy at 45-66 Hz is +-(0.1 % of reading
# + 0.05 % of range) (IM WT310E-02EN, 7.3.2); the range is the voltage range x the current range, asked at
# open, and 0.05 % of it is the meter's absolute term (the error at zero load: a reading of -0.012 W on a
# 150 V x 0.5 A range is zero within it).
MODELS = {
    "wt310": Model("wt310", ("*CLS", ":COMM:HEAD OFF", ":SYST:COMM:COMM WT300", ":NUM:FORM ASCII",
                             ":NUM:NORM:NUM 1", ":NUM:NORM:ITEM1 P,1"),
                   ":NUM:NORM:VAL?", ":SAMP:RATE?", 0.01, 24000.0, (":INP:VOLT:RANG?", ":INP:CURR:RANG?"),
                   0.0005),
    "wt210": Model("wt210", ("*CLS", ":COMM:HEAD OFF", ":COMM:REM ON", ":MEAS:ITEM:V OFF", ":MEAS:ITEM:A OFF",
                             ":MEAS:ITEM:W ON"), ":MEAS:VAL?", None, 0.01, 12000.0),
    "generic": Model("generic", (), "MEAS:POW?"),
}


def visa_resource(arg):
    """The VISA resource string for a spec argument; MeterSpecError for anything else."""
    arg = (arg or "").strip()
    short = TCP_SHORT.match(arg)
    if short:
        return "TCPIP::%s::%s::SOCKET" % short.groups()
    if arg.startswith("/dev/"):
        return "ASRL%s::INSTR" % arg
    if VISA_RESOURCE.match(arg):
        return arg
    raise MeterSpecError("scpi: %r is not a VISA resource; use scpi:tcp://HOST:PORT, scpi:/dev/ttyUSB0, "
                         "scpi:TCPIP::HOST::PORT::SOCKET or scpi:USB0::...::INSTR" % arg)


def parse_scpi_number(reply):
    text_ = reply.strip()
    try:
        value = float(re.split(r"[,;\s]", text_)[0])
    except ValueError:
        raise MalformedReading("SCPI reply is not a number: %r" % text_[:60])
    if value != value or abs(value) >= SCPI_NAN or value in (float("inf"), float("-inf")):
        raise MalformedReading("SCPI reply has no valid value: %r" % text_[:60])
    return value


class ScpiMeter(Meter):
    kind = "scpi"
    where = "laptop"
    scope = "wall"
    rate_hz = 10.0
    OPTIONS = {"model": choice(*sorted(MODELS)), "query": text, "init": text, "rate_hz": positive,
               "timeout_s": positive, "baud": whole}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.resource = visa_resource(arg)
        self.model = MODELS[self.options.get("model", "wt310" if "query" not in self.options else "generic")]
        self.query = self.options.get("query", self.model.query)
        init = self.options.get("init")
        self.init = tuple(c for c in init.split("|") if c.strip()) if init is not None else self.model.init
        self.accuracy_rel = self.options.get("accuracy_rel", self.model.accuracy_rel)
        if "accuracy_rel" not in self.options and self.model.accuracy_rel is not None:
            self.accuracy_source = "MLPerf Power: a Yokogawa sample is accepted up to 1.00 % uncertainty"
        self.max_w = self.options.get("max_w", self.model.max_w)
        self.rate_hz = self.options.get("rate_hz", self.rate_hz)
        self._rm = None
        self._inst = None
        self._visa = None
        self._visa_errors = ()

    def open(self):
        try:
            import pyvisa
        except ImportError:
            raise MeterUnavailable("the scpi meter needs PyVISA: `pip install pyvisa pyvisa-py`")
        self._visa = pyvisa
        self._visa_errors = (pyvisa.errors.Error, OSError)
        try:
            self._rm = pyvisa.ResourceManager("@py")
            self._inst = self._rm.open_resource(self.resource, **self._resource_kwargs())
        except PermissionError:
            self.close()
            raise MeterUnavailable("no permission to open %s: add yourself to the group that owns the device "
                                   "(dialout for serial, a udev rule for USB-TMC) and log in again" % self.resource)
        except self._visa_errors as exc:
            self.close()
            raise MeterUnavailable("cannot open %s through pyvisa-py: %s" % (self.resource, exc))
        except Exception as exc:  # backends raise bare ValueError/Exception for a form they do not take
            self.close()
            raise MeterUnavailable("the VISA backend cannot open %s (%s): give the port as the backend names it "
                                   "(`pyvisa-info`; e.g. scpi:ASRL1::INSTR or scpi:ASRL/dev/ttyUSB0::INSTR) or use "
                                   "a LAN resource, scpi:tcp://HOST:PORT" % (self.resource, exc))
        try:
            self._setup()
        except (MeterDisconnected, NoReading) as exc:
            self.close()
            raise MeterUnavailable("%s did not answer its set-up: %s" % (self.resource, exc))

    def _resource_kwargs(self):
        kwargs = {"read_termination": "\n", "write_termination": "\n",
                  "timeout": int(1000 * self.options.get("timeout_s", 2.0))}
        if self.resource.upper().startswith("ASRL"):
            kwargs["baud_rate"] = self.options.get("baud", 9600)
        return kwargs

    def _setup(self):
        idn = None
        try:
            idn = self._ask("*IDN?").strip()
        except (MalformedReading, NoReading) as exc:  # IEEE 488.2 wants *IDN?, but not every meter has it
            self.notes.append("no identity: %s" % exc)
        for command in self.init:
            self._send(command)
        if self.model.rate_query:
            try:
                self.cap_rate(parse_scpi_number(self._ask(self.model.rate_query)))
                self.sampling, self.sampling_window_s = "average", self.update_period_s
                self.sampling_source = "a Yokogawa's value is the mean over its data update interval (:SAMP:RATE?)"
            except MalformedReading as exc:
                self.notes.append("update interval unknown: %s" % exc)
        self.provenance = {"resource": self.resource, "model": self.model.name, "idn": idn, "query": self.query}
        self._ask_range()

    def _ask_range(self):
        """The power range (V range x A range) and, from it, the model's absolute accuracy term."""
        if not self.model.range_queries or "accuracy_abs_w" in self.options:
            return
        try:
            range_w = 1.0
            for query in self.model.range_queries:
                range_w *= parse_scpi_number(self._ask(query))
        except (MalformedReading, NoReading) as exc:
            self.notes.append("range unknown, no absolute accuracy term: %s" % exc)
            return
        self.accuracy_abs_w = self.model.range_rel * range_w
        self.provenance["range_w"] = range_w
        self.accuracy_source = ("MLPerf Power's 1.00 %% bound + the WT310E's %.2f %% of the %g W range"
                                % (100 * self.model.range_rel, range_w))

    def _send(self, command):
        try:
            self._inst.write(command)
        except self._visa_errors as exc:
            raise MeterDisconnected("%s: write failed: %s" % (self.resource, exc))

    def _ask(self, command):
        try:
            return self._inst.query(command)
        except self._visa.errors.VisaIOError as exc:
            if exc.error_code == self._visa.constants.StatusCode.error_timeout:
                raise NoReading("%s: no reply to %s" % (self.resource, command))
            raise MeterDisconnected("%s: %s" % (self.resource, exc))
        except UnicodeDecodeError:
            raise MalformedReading("%s: a reply to %s that is not text" % (self.resource, command))
        except self._visa_errors as exc:
            raise MeterDisconnected("%s: %s" % (self.resource, exc))

    def read_sample(self):
        watts = parse_scpi_number(self._ask(self.query))
        return Sample(now(), watts, {})

    def close(self):
        inst, rm, self._inst, self._rm = self._inst, self._rm, None, None
        for handle in (inst, rm):
            if handle is not None:
                try:
                    handle.close()
                except Exception:  # a vanished instrument may fail to close; the handle is dropped
                    pass
