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

Thor before jetson-stats 7.2.2 (7.2.0's `power.py` scans INA3221 devices only): `power` holds the
module's rails and no `VIN`, so any rule would give a partial sum (8.6 W where the board takes 15.0 W).
The meter then reads VIN itself from the INA238's sysfs node (as the ina3221 meter does) or, when it
cannot, refuses with the fix; naming rails (`jtop:VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0`) asks for the
module's sum instead.

The client reads what the `jtop.service` daemon last sampled; `read()` waits for the next update
(`jetson.ok()`), so this is a paced meter at the service's interval. The service keeps the first
client's interval: the one it actually runs at is read back after start and used (recorded as
`update_period_s`). A rail's `power` (4.x, 7.x) or `cur` (3.x) is the service's last read, a point
sample; `avg` is its running mean since the service started and is never used.
Options: `interval_s=S` (requested; default 0.5 s, the shortest its maintainer advises, since the
service reads every sensor of the board each interval), `root=DIR` (sysfs tree for Thor's VIN).
"""
from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, Sample, now,
                            NoReading, positive, text)
from hw.meters.ina3221 import Ina3221Meter, driver_of, find_rails
from hw.meters.rails import JETSON_MAX_W, THOR_ONLY_RAILS, Total, follow, parse_rail_sum, pick_total

THOR_FIX = ("jetson-stats %s on this Thor reports the module's rails only, not the board input VIN (added in "
            "jetson-stats 7.2.2), and VIN could not be read from sysfs here (%s): upgrade (`sudo -H pip3 install "
            "-U 'jetson-stats>=7.2.2'` then `sudo jtop --install-service`), or use --meter ina3221 or tegrastats, "
            "or name the module's rails: jtop:VDD_GPU+VDD_CPU_SOC_MSS+VIN_SYS_5V0")
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
    sampling_source = "jtop's `power` is the service's last read of each monitor, once per interval"
    OPTIONS = {"interval_s": positive, "root": text}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.wanted = parse_rail_sum(arg)
        self.interval = self.options.get("interval_s", 0.5)
        self.rate_hz = 1.0 / self.interval
        self.total = None
        self._jetson = None
        self._vin = None
        self.seen = set()
        self.version = self.served = None

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
        except MeterUnavailable:
            self.close()
            raise

    def _describe(self, jtop_module, jetson):
        # The first client's interval wins: use the one the service runs at.
        served = float(getattr(jetson, "interval", self.interval) or self.interval)
        self.rate_hz = 1.0 / served
        self.update_period_s = served
        version = getattr(jtop_module, "__version__", None)
        rails = jtop_rails(jetson.power)[0]
        if not self.wanted and "VIN" not in rails and (THOR_ONLY_RAILS.intersection(rails) or self._ina238()):
            self._open_vin(version)
            rails["VIN"] = self._vin.watts()
            self.total = pick_total(rails)
        else:
            self.total = total_for(jetson.power, self.wanted)
        self.seen = set(rails)
        self.version, self.served = version, served
        self._use(self.total)
        if self._vin is not None:
            self.notes.append("VIN read from sysfs: jetson-stats %s has no INA238 (added in 7.2.2)" % version)
        if abs(served - self.interval) > 1e-9:
            self.notes.append("jtop service runs at %g s (asked %g s): another client set it" % (served, self.interval))

    def _use(self, total):
        self.total = total
        self.scope = total.scope
        self.accuracy_abs_w = Ina3221Meter.RAIL_OFFSET_W * max(1, len(total.rails))
        self.provenance = dict(total.info(), jtop_version=self.version, interval_requested_s=self.interval,
                               interval_served_s=self.served)
        if self._vin is not None:
            self.provenance["vin_file"] = self._vin.paths[0]

    def _follow(self, rails):
        """A rail not seen before (a supply that came online): the rule again, never a sum that leaves it out."""
        total, note = follow(self.total, self.seen, rails, self.wanted)
        if note:
            self.notes.append(note)
            self._use(total)

    def _ina238(self):
        """The board-input channels of an INA238 (Thor's VIN) under the meter's sysfs root."""
        readers = find_rails(self.options.get("root", "/"))[0]
        return [r for r in readers if driver_of(r.paths[0]) == "ina238"]

    def _open_vin(self, version):
        """Read Thor's VIN beside jtop (never a partial sum of the module's rails); refuse with the fix."""
        found = self._ina238()
        if not found:
            raise MeterUnavailable(THOR_FIX % (version, "no ina238 node under %s" % self.options.get("root", "/")))
        try:
            found[0].open()
            found[0].watts()
        except (OSError, MalformedReading, NoReading) as exc:
            found[0].close()
            raise MeterUnavailable(THOR_FIX % (version, exc))
        self._vin = found[0]

    def read_sample(self):
        if self._jetson is None or not self._jetson.ok():
            raise MeterDisconnected("the jtop service stopped answering")
        t = now()
        rails, own = jtop_rails(self._jetson.power)
        if not self.total.rails:  # jetson-stats 3.x: its own total
            return Sample(t, own if own is not None else sum(rails.values()), rails)
        if self._vin is not None:
            rails["VIN"] = self._vin.watts()
        if not self.seen.issuperset(rails):
            self._follow(rails)
        try:
            return Sample(t, self.total.watts(rails), rails)
        except KeyError as exc:
            raise MalformedReading("jtop reading without rail %s" % exc)

    def close(self):
        vin, self._vin = self._vin, None
        if vin is not None:
            vin.close()
        jetson, self._jetson = self._jetson, None
        if jetson is not None:
            try:
                jetson.close()
            except Exception:  # the service may already be gone; nothing left to release
                pass
