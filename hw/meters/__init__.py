"""Power meters behind one spec string: `hw.meters.open_meter(spec)`.

Specs: `auto`, `none`, `jtop[:RAILS]`, `ina3221[:RAILS]`, `tegrastats[:RAILS]`, `nvml[:INDEX]`, `rapl`,
`wattsup:PORT`, `um25c:PORT`, `scpi:RESOURCE`, `lines:PORT`, each optionally followed by
`?key=value&...` (values are URL-unquoted, so `%26` is a literal `&`). RAILS is one rail or a sum,
`VDD_IN+VDD_MUX`; without it the board's own total rule applies (`hw.meters.rails`). Only the first
`?` separates the options, so an SCPI query such as `scpi:/dev/ttyUSB0?query=MEAS:POW?` keeps its own.
Options carry their unit in the name (`interval_s`, `rate_hz`, `timeout_s`, `max_w`); each module's
docstring lists its own, and an unknown or malformed option is a MeterSpecError before any port opens.

`KINDS` is the one table of meter kinds: kind -> (module, class, where, needs_arg). `open_meter`
returns an opened meter (see `hw.meters.base.Meter`), or None for `none` and for an `auto` that found
nothing. `is_serial(spec)` / `where(spec)` say whether a meter sits on the laptop in an SSH setup.
"""
import collections
import importlib
import logging
from urllib.parse import unquote

from hw.meters.base import (COMMON_OPTIONS, MalformedReading, Meter, MeterDisconnected, MeterError, MeterSpecError,
                            MeterUnavailable, NoReading, Sample)

__all__ = ["AUTO", "NONE", "open_meter", "open_auto", "make_meter", "parse_spec", "is_serial", "where", "probe", "KINDS",
           "AUTO_ORDER", "DEVICE_KINDS", "LAPTOP_KINDS", "Meter", "Sample", "MeterError", "MeterSpecError",
           "MeterUnavailable", "MalformedReading", "NoReading", "MeterDisconnected"]

log = logging.getLogger(__name__)

Kind = collections.namedtuple("Kind", "module cls where needs_arg")

# The one place a meter kind is registered. Modules are imported on use, so opening one meter never
# imports another family's dependencies (pyserial, PyVISA, pynvml).
KINDS = collections.OrderedDict([
    ("ina3221", Kind("hw.meters.ina3221", "Ina3221Meter", "device", False)),
    ("jtop", Kind("hw.meters.jtop", "JtopMeter", "device", False)),
    ("tegrastats", Kind("hw.meters.tegrastats", "TegrastatsMeter", "device", False)),
    ("nvml", Kind("hw.meters.nvml", "NvmlMeter", "device", False)),
    ("rapl", Kind("hw.meters.rapl", "RaplMeter", "device", False)),
    ("wattsup", Kind("hw.meters.serialmeters", "WattsUpMeter", "laptop", True)),
    ("um25c", Kind("hw.meters.serialmeters", "UmMeter", "laptop", True)),
    ("scpi", Kind("hw.meters.scpi", "ScpiMeter", "laptop", True)),
    ("lines", Kind("hw.meters.serialmeters", "LinesMeter", "laptop", True)),
])
AUTO, NONE = "auto", "none"  # the two specs that name no kind: find one, measure nothing
SPECIAL = (AUTO, NONE)
DEVICE_KINDS = tuple(k for k, v in KINDS.items() if v.where == "device")
LAPTOP_KINDS = tuple(k for k, v in KINDS.items() if v.where == "laptop")
# What `auto` tries, in order: the on-board monitors first (no service, fastest), then jtop's
# service, tegrastats, an NVIDIA GPU, Intel/AMD RAPL.
AUTO_ORDER = DEVICE_KINDS


def parse_spec(spec):
    """`kind[:arg][?k=v&...]` -> (kind, arg or None, {k: v}); MeterSpecError for unknown kinds."""
    allowed = ", ".join(SPECIAL + tuple(KINDS))
    if not isinstance(spec, str) or not spec.strip():
        raise MeterSpecError("empty meter spec; allowed kinds: %s" % allowed)
    base, _, query = spec.strip().partition("?")
    kind, sep, arg = base.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS and kind not in SPECIAL:
        raise MeterSpecError("unknown meter kind %r in spec %r; allowed kinds: %s" % (kind, spec, allowed))
    arg = arg.strip() if sep else None
    if kind in KINDS and KINDS[kind].needs_arg and not arg:
        example = "tcp://HOST:5025" if kind == "scpi" else "/dev/ttyUSB0"
        raise MeterSpecError("meter %r needs a port: %s:%s" % (kind, kind, example))
    options = {}
    for item in query.split("&") if query else []:
        if not item:
            continue
        key, eq, value = item.partition("=")
        options[unquote(key.strip())] = unquote(value) if eq else "1"
    return kind, arg or None, options


def where(spec):
    """'laptop' for a meter that hangs off the laptop in an SSH setup, else 'device'."""
    kind = parse_spec(spec)[0]
    return KINDS[kind].where if kind in KINDS else "device"


def is_serial(spec):
    """True when the spec names a laptop-side meter (serial port, USB, LAN)."""
    return where(spec) == "laptop"


def meter_class(kind):
    entry = KINDS[kind]
    return getattr(importlib.import_module(entry.module), entry.cls)


def make_meter(spec):
    """An unopened meter for a concrete spec (not `auto`/`none`); MeterSpecError for a bad option."""
    kind, arg, options = parse_spec(spec)
    if kind in SPECIAL:
        raise MeterSpecError("make_meter needs a concrete meter, not %r" % kind)
    return meter_class(kind)(spec.strip(), arg, options)


def open_meter(spec):
    """Open the meter named by `spec`; None for `none` (energy stays null) or an empty `auto`.

    Raises MeterSpecError for a bad spec and MeterUnavailable when the named meter cannot work here.
    """
    kind, _, options = parse_spec(spec)
    if kind == "none":
        return None
    if kind == "auto":
        return open_auto(options)
    meter = make_meter(spec)
    meter.open()
    return meter


def auto_spec(kind, options):
    """`kind?...` with those of `options` that the kind takes (`root=` means nothing to jtop)."""
    cls = meter_class(kind)
    taken = sorted((k, v) for k, v in options.items() if k in cls.OPTIONS or k in COMMON_OPTIONS)
    return kind + ("?" + "&".join("%s=%s" % kv for kv in taken) if taken else "")


def open_auto(options=None):
    """The first meter of AUTO_ORDER that opens and reads; it carries why the others were skipped."""
    skipped = []
    for kind in AUTO_ORDER:
        meter = make_meter(auto_spec(kind, options or {}))
        try:
            meter.open()
            meter.read()
        except (MeterError, OSError) as exc:
            meter.close()
            skipped.append("%s: %s" % (kind, first_line(exc)))
            continue
        meter.notes.append("auto picked %s" % kind)
        meter.notes.extend("auto skipped " + s for s in skipped)
        log.info("meter auto -> %s (skipped: %s)", meter.spec, "; ".join(skipped) or "none")
        return meter
    log.warning("meter auto found no meter here, energy stays null: %s", "; ".join(skipped))
    return None


def probe(spec):
    """Open, read once and close: (ok, message) for `ebt meters`."""
    try:
        meter = make_meter(spec)
        meter.open()
    except (MeterError, OSError) as exc:
        return False, first_line(exc)
    try:
        sample = meter.read()
        return True, "%.3f W%s" % (sample.watts, rails_text(sample.rails))
    except (MeterError, OSError) as exc:
        return False, "opened but reading failed: %s" % first_line(exc)
    finally:
        meter.close()


def rails_text(rails):
    if not rails:
        return ""
    return " (" + ", ".join("%s %.2f W" % kv for kv in rails.items()) + ")"


def first_line(exc):
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
