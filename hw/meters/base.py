"""What every meter shares: the sample type, the meter base class, its option parser and the errors.

A meter is opened by `hw.meters.open_meter(spec)`. Its `read()` returns one checked `Sample`:

* `MeterSpecError`: a bad spec or option, raised by the constructor, before any port is opened;
* `MeterUnavailable`: `open()` cannot use the meter here (missing package, path, permission);
* `MalformedReading`: one reading could not be parsed, or lies outside the meter's physical range
  (not finite, below zero by more than the meter's own zero error, above `max_w`): the sampler counts
  and drops it. A total a little below zero, within the instrument's absolute accuracy
  (`accuracy_abs_w`, its error at zero load), reads as 0 W: that error is already in the uncertainty
  (`hw.energy`), and `info()['zero_clamped']` counts such readings;
* `NoReading`: the meter stayed silent for its timeout, or a transient read error (one I2C `EIO`)
  lost this one reading: the sampler skips it;
* `MeterDisconnected`: only mid-run, the device went away; the sampler reopens it with backoff.

Every meter declares `scope` (`module` on-board rails, `board` with carrier rails or the board input,
`wall` external meter, `gpu` NVML, `package` RAPL), its accuracy class `accuracy_rel` (fraction of the
reading) and `accuracy_abs_w` (watts), `max_w` (the physical range) and, where the sensor tells,
`update_period_s` (which caps `rate_hz`). `info()` carries them with the meter's provenance.

Each meter also says what one reading is (`sampling`, with `sampling_window_s` and
`sampling_source`): `point` (the value at one instant, or over a window much shorter than the
sampling interval: tegrastats, jtop, most sysfs reads; also any meter that does not say), `average`
(the mean over `sampling_window_s`, e.g. an INA3221 with hardware averaging, NVML's power, a wall
meter's update period) or `counter` (an energy counter: exact between reads). `hw.energy` picks its
sampling term from it and the sampler reads at least as often as an averaging meter updates.
Options common to every meter: `max_w=`, `accuracy_rel=`, `accuracy_abs_w=` (the user's own
instrument class overrides the default).
"""
import collections
import logging
import math
import os
import time

log = logging.getLogger(__name__)

SCOPES = ("module", "board", "wall", "gpu", "package")
INF = float("inf")


class MeterError(Exception):
    """Base of every meter error."""


class MeterUnavailable(MeterError):
    """The meter cannot be opened here; the message says which package or path is missing and the fix."""


class MeterSpecError(MeterError, ValueError):
    """A meter spec or option is malformed (unknown kind, bad value); raised before any port is opened."""


class MalformedReading(MeterError, ValueError):
    """One reading could not be parsed or is physically impossible; the next one may be fine."""


class NoReading(MeterError):
    """The meter produced nothing within its timeout, or lost this one reading (not an error by itself)."""


class MeterDisconnected(MeterError, IOError):
    """The device went away mid-run (unplugged serial meter, dead service); reopen it."""


class Sample(collections.namedtuple("_Sample", "t watts rails")):
    """One reading: `t` wall-clock epoch seconds, `watts` total power, `rails` {name: watts}.

    Unpacks as the 3-tuple `(t, watts, rails)`; counter meters (NVML energy, RAPL) also carry
    `energy_j`, the joules counted since the meter was opened (None elsewhere).
    """

    def __new__(cls, t, watts, rails=None, energy_j=None):
        self = super().__new__(cls, float(t), float(watts), rails if rails is not None else {})
        self.energy_j = energy_j
        return self

    def __repr__(self):
        return "Sample(t=%.3f, watts=%.3f, rails=%r, energy_j=%r)" % (self.t, self.watts, self.rails, self.energy_j)


# -- options ------------------------------------------------------------------------------------
def finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("not finite")
    return value


def positive(text):
    value = finite(text)
    if value <= 0:
        raise ValueError("not > 0")
    return value


def fraction(text):
    value = finite(text)
    if not 0 <= value < 1:
        raise ValueError("not in [0, 1)")
    return value


def non_negative(text):
    value = finite(text)
    if value < 0:
        raise ValueError("negative")
    return value


def whole(text):
    value = int(text)
    if value < 0:
        raise ValueError("negative")
    return value


def text(value):
    return value


def choice(*allowed):
    def parse(value):
        if value.lower() not in allowed:
            raise ValueError("allowed: %s" % ", ".join(allowed))
        return value.lower()
    parse.allowed = allowed
    return parse


# Old option names point to their new name (units in the name) instead of "unknown option".
RENAMED = {"interval": "interval_s", "rate": "rate_hz", "timeout": "timeout_s", "max": "max_w"}
COMMON_OPTIONS = {"max_w": positive, "accuracy_rel": fraction, "accuracy_abs_w": non_negative}


def parse_options(kind, allowed, raw):
    """{name: parsed value} for the options given; MeterSpecError naming the option and the fix."""
    out = {}
    for name, value in raw.items():
        if name not in allowed:
            hint = " (now called %s=)" % RENAMED[name] if RENAMED.get(name) in allowed else ""
            raise MeterSpecError("meter %s: unknown option %s=%s; options: %s" % (
                kind, name, hint, ", ".join(sorted(allowed)) or "none"))
        try:
            out[name] = allowed[name](value)
        except (TypeError, ValueError) as exc:
            raise MeterSpecError("meter %s: option %s=%r is invalid (%s)" % (kind, name, value, exc))
    return out


class Meter:
    """Base class. Subclasses set the class attributes below and implement open/read_sample/close.

    `paced` meters deliver readings at their own pace (read() blocks until the next one: serial
    loggers, tegrastats, the jtop service); the sampler polls the others at its own rate, capped
    at `rate_hz`. `OPTIONS` maps each option a kind takes to its parser (on top of COMMON_OPTIONS).
    """

    kind = "meter"
    counter = False
    rate_hz = 10.0
    paced = False
    where = "device"
    scope = None
    accuracy_rel = None
    accuracy_abs_w = None
    accuracy_source = None
    max_w = None
    update_period_s = None
    sampling = "point"
    sampling_window_s = None
    sampling_source = "not declared: taken as point samples, the assumption that claims least"
    OPTIONS = {}

    def __init__(self, spec, arg=None, options=None):
        self.spec = spec
        self.arg = arg
        allowed = dict(COMMON_OPTIONS, **self.OPTIONS)
        self.options = parse_options(self.kind, allowed, dict(options or {}))
        self.notes = []
        self.provenance = {}
        self.zero_clamped = 0
        for name in COMMON_OPTIONS:
            if name in self.options:
                setattr(self, name, self.options[name])
        if "accuracy_rel" in self.options or "accuracy_abs_w" in self.options:
            self.accuracy_source = "the spec's options"

    def open(self):
        raise NotImplementedError

    def read_sample(self):
        """One unchecked Sample (subclasses)."""
        raise NotImplementedError

    def read(self):
        """One Sample whose total and rails lie in the meter's physical range."""
        sample = self.read_sample()
        high = self.max_w if self.max_w is not None else INF
        # One chained comparison per value on the hot path (NaN fails it too); check() says why.
        if not 0.0 <= sample.watts <= high:
            self.check(sample.watts, "total")
            sample = self.clamp_zero(sample)
        for name, watts in sample.rails.items():
            if not -high <= watts <= high:
                self.check(watts, name, rail=True)
        return sample

    def check(self, watts, what, rail=False):
        """MalformedReading for a reading no instrument of this kind can produce."""
        if not math.isfinite(watts):
            raise MalformedReading("%s: %s reading %r is not finite" % (self.spec, what, watts))
        # A rail may read slightly negative at idle (offset error, seen on Thor's VDD_GPU); a total only
        # within the instrument's zero error (then it reads 0 W, clamp_zero).
        low = -self.max_w if rail and self.max_w else -(self.accuracy_abs_w or 0.0)
        if watts < low:
            raise MalformedReading("%s: %s reading %.6g W is negative" % (self.spec, what, watts))
        if self.max_w is not None and abs(watts) > self.max_w:
            raise MalformedReading("%s: %s reading %.6g W is above the meter's %g W maximum"
                                   % (self.spec, what, watts, self.max_w))

    def clamp_zero(self, sample):
        """A total below zero but within the zero error (check() let it through) reads as 0 W."""
        if sample.watts >= 0.0:
            return sample
        self.zero_clamped += 1
        return Sample(sample.t, 0.0, sample.rails, sample.energy_j)

    def cap_rate(self, period_s):
        """Record the sensor's own update period and never poll faster than it."""
        if period_s and period_s > 0:
            self.update_period_s = period_s
            self.rate_hz = min(self.rate_hz, 1.0 / period_s)

    def close(self):
        pass

    def reopen(self):
        try:
            self.close()
        except Exception as exc:  # closing a dead device may fail; the reopen is what matters
            log.debug("closing %s before reopen: %s", self.spec, exc)
        self.open()

    def info(self):
        out = {"spec": self.spec, "kind": self.kind, "rate_hz": self.rate_hz, "counter": self.counter,
               "where": self.where, "scope": self.scope, "accuracy_rel": self.accuracy_rel,
               "accuracy_abs_w": self.accuracy_abs_w, "accuracy_source": self.accuracy_source,
               "max_w": self.max_w, "update_period_s": self.update_period_s,
               "sampling": {"kind": self.sampling, "window_s": self.sampling_window_s,
                            "source": self.sampling_source},
               "zero_clamped": self.zero_clamped}
        if self.provenance:
            out["provenance"] = dict(self.provenance)
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return "<%s meter %s>" % (self.kind, self.spec)


def now():
    return time.time()


class SysfsValue:
    """One sysfs attribute kept open: each `read_int()` re-reads it from offset 0.

    sysfs regenerates an attribute's text on every read at offset 0, so a kept file descriptor
    and pread() avoid an open/close pair per sample (the sampler's CPU budget is <= 1% of a core).
    A failed read (an I2C `EIO` on one channel) loses this one reading only: NoReading.
    """

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def read_int(self):
        try:
            raw = os.pread(self.fd, 64, 0)
        except OSError as exc:
            raise NoReading("%s: %s" % (self.path, exc.strerror))
        try:
            # Some nodes append a unit ("32760 ma"); the number comes first.
            return int(raw.split()[0])
        except (IndexError, ValueError):
            raise MalformedReading("%s: unreadable value %r" % (self.path, raw[:40]))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_text(path, default=None):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return default
