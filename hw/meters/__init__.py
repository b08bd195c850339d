"""Power meters behind one spec string: `hw.meters.open_meter(spec)`.

Specs (DESIGN.md): `auto`, `none`, `jtop`, `ina3221[:RAIL]`, `tegrastats`, `nvml[:INDEX]`, `rapl`,
`wattsup:PORT`, `um25c:PORT`, `scpi:PORT`, `lines:PORT`, each optionally followed by `?key=value&...`
(values are URL-unquoted, so `%26` is a literal `&`). Only the first `?` separates the options, so an
SCPI query such as `scpi:/dev/ttyUSB0?query=:NUMERIC:NORMAL:VALUE? 1` keeps its own `?`.

Options understood by every sysfs meter: `root=DIR` (a sysfs tree to read instead of `/`, for tests
and benchmarks). Per-meter options are listed in each module's docstring.

`open_meter` returns an opened meter (see `hw.meters.base.Meter`), or None for `none` and for an
`auto` that found nothing. `LAPTOP_KINDS` / `is_serial(spec)` say which meters hang off a serial
port, i.e. sit on the laptop in an SSH setup.
"""
import logging
from urllib.parse import unquote

from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterError, MeterUnavailable,
                            NoReading, Sample)

__all__ = ["open_meter", "open_auto", "make_meter", "parse_spec", "is_serial", "probe", "KINDS", "AUTO_ORDER",
           "DEVICE_KINDS", "LAPTOP_KINDS", "Meter", "Sample", "MeterError", "MeterUnavailable",
           "MalformedReading", "NoReading", "MeterDisconnected"]

log = logging.getLogger(__name__)

DEVICE_KINDS = ("jtop", "ina3221", "tegrastats", "nvml", "rapl")
LAPTOP_KINDS = ("wattsup", "um25c", "scpi", "lines")
KINDS = ("auto", "none") + DEVICE_KINDS + LAPTOP_KINDS
# What `auto` tries, in order: the on-board INA3221 first (no service, fastest), then jtop's
# service, tegrastats, an NVIDIA GPU, Intel/AMD RAPL.
AUTO_ORDER = ("ina3221", "jtop", "tegrastats", "nvml", "rapl")
NEEDS_ARG = ("wattsup", "um25c", "scpi", "lines")


def parse_spec(spec):
    """`kind[:arg][?k=v&...]` -> (kind, arg or None, {k: v}); ValueError for unknown kinds."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("empty meter spec; allowed kinds: %s" % ", ".join(KINDS))
    base, _, query = spec.strip().partition("?")
    kind, sep, arg = base.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ValueError("unknown meter kind %r in spec %r; allowed kinds: %s"
                         % (kind, spec, ", ".join(KINDS)))
    arg = arg.strip() if sep else None
    if kind in NEEDS_ARG and not arg:
        raise ValueError("meter %r needs a serial port: %s:/dev/ttyUSB0" % (kind, kind))
    options = {}
    for item in query.split("&") if query else []:
        if not item:
            continue
        key, eq, value = item.partition("=")
        options[unquote(key.strip())] = unquote(value) if eq else "1"
    return kind, arg or None, options


def is_serial(spec):
    """True when the spec names a serial meter (on the laptop in an SSH setup)."""
    return parse_spec(spec)[0] in LAPTOP_KINDS


def meter_class(kind):
    # Imported here so that opening one meter never imports another family's module.
    if kind == "jtop":
        from hw.meters.jtop import JtopMeter
        return JtopMeter
    if kind == "ina3221":
        from hw.meters.ina3221 import Ina3221Meter
        return Ina3221Meter
    if kind == "tegrastats":
        from hw.meters.tegrastats import TegrastatsMeter
        return TegrastatsMeter
    if kind == "nvml":
        from hw.meters.nvml import NvmlMeter
        return NvmlMeter
    if kind == "rapl":
        from hw.meters.rapl import RaplMeter
        return RaplMeter
    from hw.meters import serialmeters
    return {"wattsup": serialmeters.WattsUpMeter, "um25c": serialmeters.UmMeter,
            "scpi": serialmeters.ScpiMeter, "lines": serialmeters.LinesMeter}[kind]


def make_meter(spec):
    """An unopened meter for a concrete spec (not `auto`/`none`)."""
    kind, arg, options = parse_spec(spec)
    if kind in ("auto", "none"):
        raise ValueError("make_meter needs a concrete meter, not %r" % kind)
    return meter_class(kind)(spec.strip(), arg, options)


def open_meter(spec):
    """Open the meter named by `spec`; None for `none` (energy stays null) or an empty `auto`.

    Raises ValueError for an unknown kind and MeterUnavailable when the named meter cannot work here.
    """
    kind, _, options = parse_spec(spec)
    if kind == "none":
        return None
    if kind == "auto":
        return open_auto(options)
    meter = make_meter(spec)
    meter.open()
    return meter


def open_auto(options=None):
    """The first meter of AUTO_ORDER that opens and reads; it carries why the others were skipped."""
    suffix = ""
    if options:
        suffix = "?" + "&".join("%s=%s" % kv for kv in sorted(options.items()))
    skipped = []
    for kind in AUTO_ORDER:
        meter = make_meter(kind + suffix)
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
    except (MeterError, OSError, ValueError) as exc:
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
