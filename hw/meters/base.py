"""What every meter shares: the sample type, the meter base class and the errors a sampler acts on.

A meter is opened by `hw.meters.open_meter(spec)`. Its `read()` returns one `Sample`; it raises
`MalformedReading` for a reading it could not parse (the sampler counts and skips it),
`NoReading` when the meter stayed silent for its timeout, and `MeterDisconnected` when the device
went away (the sampler reopens it with backoff and records the gap). `MeterUnavailable` is raised by
`open()` with a message naming the missing package or path and the fix.
"""
import collections
import os
import logging
import time

log = logging.getLogger(__name__)


class MeterError(Exception):
    """Base of every meter error."""


class MeterUnavailable(MeterError):
    """The meter cannot be opened here; the message says which package or path is missing and the fix."""


class MeterSpecError(MeterError, ValueError):
    """A meter spec or option is malformed (unknown kind, bad value); raised before any port is opened."""


class MalformedReading(MeterError, ValueError):
    """One reading could not be parsed; the next one may be fine."""


class NoReading(MeterError):
    """The meter produced nothing within its timeout (not an error by itself)."""


class MeterDisconnected(MeterError, IOError):
    """The device went away mid-run (unplugged serial meter, dead service); reopen it."""


class Sample(collections.namedtuple("_Sample", "t watts rails")):
    """One reading: `t` wall-clock epoch seconds, `watts` total power, `rails` {name: watts}.

    Unpacks as the 3-tuple `(t, watts, rails)` that DESIGN.md names; counter meters (NVML energy,
    RAPL) also carry `energy_j`, the joules counted since the meter was opened (None elsewhere).
    """

    def __new__(cls, t, watts, rails=None, energy_j=None):
        self = super(Sample, cls).__new__(cls, float(t), float(watts), rails if rails is not None else {})
        self.energy_j = energy_j
        return self

    def __repr__(self):
        return "Sample(t=%.3f, watts=%.3f, rails=%r, energy_j=%r)" % (self.t, self.watts, self.rails, self.energy_j)


class Meter(object):
    """Base class. Subclasses set `kind`, `counter`, `rate_hz`, `paced` and implement open/read/close.

    `paced` meters deliver readings at their own pace (read() blocks until the next one: serial
    loggers, tegrastats, the jtop service); the sampler polls the others at its own rate, capped
    at `rate_hz`.
    """

    kind = "meter"
    counter = False
    rate_hz = 10.0
    paced = False
    where = "device"

    def __init__(self, spec, arg=None, options=None):
        self.spec = spec
        self.arg = arg
        self.options = dict(options or {})
        self.notes = []

    def open(self):
        raise NotImplementedError

    def read(self):
        raise NotImplementedError

    def close(self):
        pass

    def reopen(self):
        try:
            self.close()
        except Exception as exc:  # closing a dead device may fail; the reopen is what matters
            log.debug("closing %s before reopen: %s", self.spec, exc)
        self.open()

    def info(self):
        out = {"spec": self.spec, "kind": self.kind, "rate_hz": self.rate_hz,
               "counter": self.counter, "where": self.where}
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


def option_float(options, name, default):
    """A numeric option from the spec, with an error naming the option when it is not a number."""
    if name not in options:
        return default
    try:
        return float(options[name])
    except ValueError:
        raise ValueError("meter option %s=%r is not a number" % (name, options[name]))


def now():
    return time.time()


class SysfsValue(object):
    """One sysfs attribute kept open: each `read_int()` re-reads it from offset 0.

    sysfs regenerates an attribute's text on every read at offset 0, so a kept file descriptor
    and pread() avoid an open/close pair per sample (the sampler's CPU budget is <= 1% of a core).
    """

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)

    def read_int(self):
        raw = os.pread(self.fd, 64, 0)
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
    except (IOError, OSError):
        return default
