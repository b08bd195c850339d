"""jetson-stats' Python API (`jtop`): board power and rails from the jtop service.

Source: rbonghi/jetson_stats, `jtop/core/power.py` (4.x) and `jtop/core/tegra_parse.py` (3.x), and
the jtop API docs. The `power` property changed shape between major versions:

* 4.x and later: `{'rail': {NAME: {'volt': mV, 'curr': mA, 'power': mW, 'avg': mW, ...}},
  'tot': {'power': mW, 'avg': mW, 'name': 'VDD_IN', ...}}`; `tot` is VDD_IN / POM_5V_IN when the
  board has an input rail, else the sum of all rails.
* 3.x (the last series for JetPack 4 / Python 3.6 on a TX2): a pair `(total, rails)` with
  `{'cur': mW, 'avg': mW}` entries, parsed from tegrastats (`VOLTS()` in tegra_parse.py).

`power_to_watts()` converts either shape. The client reads what the `jtop.service` daemon last
sampled; `read()` waits for the next update (`jetson.ok()`), so this is a paced meter at the
service interval. Options: `interval=SECONDS` (default 0.5; the service's floor in practice).
"""
from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, Sample,
                            now, option_float)


def power_to_watts(power):
    """(total watts, {rail: watts}) from a jtop `power` value of either shape (mW -> W)."""
    try:
        if isinstance(power, dict) and "rail" in power:  # 4.x and later
            rails = dict((name, float(v["power"]) / 1000.0) for name, v in power["rail"].items()
                         if isinstance(v, dict) and "power" in v)
            tot = power.get("tot") or {}
            if "power" in tot:
                total = float(tot["power"]) / 1000.0
                if tot.get("name"):
                    rails.setdefault(tot["name"], total)
            else:
                total = sum(rails.values())
            return total, rails
        if isinstance(power, (tuple, list)) and len(power) == 2:  # 3.x: (total, rails)
            total_d, rails_d = power
            rails = dict((name, float(v["cur"]) / 1000.0) for name, v in (rails_d or {}).items()
                         if isinstance(v, dict) and "cur" in v)
            if total_d and "cur" in total_d:
                total = float(total_d["cur"]) / 1000.0
            else:
                total = sum(rails.values())
            return total, rails
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise MalformedReading("unrecognised jtop power value: %s" % exc)
    raise MalformedReading("unrecognised jtop power value of type %s" % type(power).__name__)


class JtopMeter(Meter):
    kind = "jtop"
    paced = True

    def open(self):
        try:
            from jtop import jtop
        except ImportError:
            raise MeterUnavailable("the jtop meter needs jetson-stats: `sudo -H pip3 install -U jetson-stats` "
                                   "then reboot (or `sudo systemctl restart jtop.service`)")
        self.interval = option_float(self.options, "interval", 0.5)
        self.rate_hz = 1.0 / self.interval
        self._jetson = jtop(interval=self.interval)
        try:
            self._jetson.start()
        except Exception as exc:  # jtop raises its own JtopException for a missing/denied service
            self._jetson = None
            raise MeterUnavailable("jtop service not reachable (%s): `sudo systemctl restart jtop.service`, "
                                   "and add yourself to the jtop group: `sudo usermod -aG jtop $USER`" % exc)

    def read(self):
        if self._jetson is None or not self._jetson.ok():
            raise MeterDisconnected("the jtop service stopped answering")
        t = now()
        watts, rails = power_to_watts(self._jetson.power)
        return Sample(t, watts, rails)

    def close(self):
        jetson, self._jetson = getattr(self, "_jetson", None), None
        if jetson is not None:
            try:
                jetson.close()
            except Exception:  # the service may already be gone; nothing left to release
                pass
