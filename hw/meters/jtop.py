"""jetson-stats' Python API (`jtop[:RAIL[+RAIL...]]`): board power and rails from the jtop service.

Source: rbonghi/jetson_stats, `jtop/jtop.py`, `jtop/core/power.py` (4.x, 7.x) and `jtop/core/tegra_parse.py`
(3.x). The `power` property changed shape between major versions:

* 4.x (4.3.2 is what Python 3.6 on JetPack 4 installs) and 7.x: `{'rail': {NAME: {'volt': mV,
  'curr': mA, 'power': mW, 'avg': mW, ...}}, 'tot': {'power': mW, 'avg': mW, 'name': 'VDD_IN', ...}}`.
  jtop moves its input rail (VDD_IN, POM_5V_IN, 7.2.2: Thor's VIN) from `rail` to `tot`; it is put
  back, and the total is recomputed from the rails by the per-board rule of `hw.meters.rails`
  (jtop's own `tot` sums every rail on an AGX Orin, VDDQ_VDD2_1V8AO and USB-C supplies included).
* 3.x: a pair `(total, rails)` with `{'cur': mW, 'avg': mW}` entries and names stripped of
  `VDD_`/`POM_`; its total (the rail containing "IN", else the sum) is right on the JetPack 4
  boards it runs on and is kept unless the spec names rails.

The client reads what the `jtop.service` daemon last sampled; `read()` waits for the next update
(`jetson.ok()`), so this is a paced meter at the service's interval. The service keeps the first
client's interval: the one it actually runs at is read back after start and used (recorded as
`update_period_s`). Options: `interval_s=S` (requested, default 0.5).
"""
from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, Sample, now,
                            positive)
from hw.meters.ina3221 import Ina3221Meter
from hw.meters.rails import JETSON_MAX_W, Total, parse_rail_sum, pick_total

INSTALL_FIX = ("`sudo -H pip3 install -U jetson-stats` then `sudo jtop --install-service` (in Docker: mount "
               "/run/jtop.sock and install the same jetson-stats version inside)")


def jtop_rails(power):
    """({rail: watts}, jtop's own total in W or None) from a `power` value of either shape (mW -> W)."""
    try:
        if isinstance(power, dict) and "rail" in power:  # 4.x and later
            rails = {name: float(v["power"]) / 1000.0 for name, v in power["rail"].items()
                     if isinstance(v, dict) and "power" in v}
            tot = power.get("tot") or {}
            if tot.get("name") and "power" in tot:
                rails.setdefault(tot["name"], float(tot["power"]) / 1000.0)
            return rails, None
        if isinstance(power, (tuple, list)) and len(power) == 2:  # 3.x: (total, rails)
            total_d, rails_d = power
            rails = {name: float(v["cur"]) / 1000.0 for name, v in (rails_d or {}).items()
                     if isinstance(v, dict) and "cur" in v}
            total = float(total_d["cur"]) / 1000.0 if total_d and "cur" in total_d else None
            return rails, total
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MalformedReading("unrecognised jtop power value: %s" % exc)
    raise MalformedReading("unrecognised jtop power value of type %s" % type(power).__name__)


def total_for(power, wanted=None):
    """The Total a jtop `power` value calls for: the rule, or 3.x's own total when no rails are named."""
    rails, own = jtop_rails(power)
    if not rails:
        raise MalformedReading("jtop reports no power rails")
    if own is not None and not wanted:
        return Total((), "jetson-stats 3.x total (input rail, else the sum)", "module")
    return pick_total(rails, wanted)


def power_to_watts(power, total=None):
    """(total watts, {rail: watts}) from a jtop `power` value; `total` defaults to the board's rule."""
    rails, own = jtop_rails(power)
    total = total or total_for(power)
    if not total.rails:
        return own if own is not None else sum(rails.values()), rails
    try:
        return total.watts(rails), rails
    except KeyError as exc:
        raise MalformedReading("jtop reading without rail %s" % exc)


class JtopMeter(Meter):
    kind = "jtop"
    paced = True
    max_w = JETSON_MAX_W
    accuracy_rel = Ina3221Meter.accuracy_rel  # the same INA3221 channels, read by the service
    accuracy_source = Ina3221Meter.accuracy_source
    OPTIONS = {"interval_s": positive}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.wanted = parse_rail_sum(arg)
        self.interval = self.options.get("interval_s", 0.5)
        self.rate_hz = 1.0 / self.interval
        self.total = None
        self._jetson = None

    def open(self):
        try:
            import jtop as jtop_module
        except ImportError:
            raise MeterUnavailable("the jtop meter needs jetson-stats: " + INSTALL_FIX)
        jetson = jtop_module.jtop(interval=self.interval)
        try:
            jetson.start()
        except Exception as exc:  # jtop raises its own JtopException for a missing/denied service
            raise MeterUnavailable("jtop service not reachable (%s): %s; for access add yourself to the jtop "
                                   "group (`sudo usermod -aG jtop $USER`) and log in again" % (exc, INSTALL_FIX))
        self._jetson = jetson
        try:
            self._describe(jtop_module, jetson)
        except MalformedReading as exc:
            self.close()
            raise MeterUnavailable("jtop gives no usable power reading here: %s" % exc)

    def _describe(self, jtop_module, jetson):
        # The first client's interval wins: use the one the service runs at.
        served = float(getattr(jetson, "interval", self.interval) or self.interval)
        self.rate_hz = 1.0 / served
        self.update_period_s = served
        self.total = total_for(jetson.power, self.wanted)
        self.scope = self.total.scope
        self.accuracy_abs_w = Ina3221Meter.RAIL_OFFSET_W * max(1, len(self.total.rails))
        self.provenance = dict(self.total.info(), jtop_version=getattr(jtop_module, "__version__", None),
                               interval_requested_s=self.interval, interval_served_s=served)
        if abs(served - self.interval) > 1e-9:
            self.notes.append("jtop service runs at %g s (asked %g s): another client set it" % (served, self.interval))

    def read_sample(self):
        if self._jetson is None or not self._jetson.ok():
            raise MeterDisconnected("the jtop service stopped answering")
        t = now()
        watts, rails = power_to_watts(self._jetson.power, self.total)
        return Sample(t, watts, rails)

    def close(self):
        jetson, self._jetson = self._jetson, None
        if jetson is not None:
            try:
                jetson.close()
            except Exception:  # the service may already be gone; nothing left to release
                pass
