"""On-board INA3221 power monitors of Jetson modules, read straight from sysfs (`ina3221[:RAIL]`).

Two driver layouts exist (confirmed against jetson-stats `jtop/core/power.py`, rbonghi/jetson_stats,
and NVIDIA's Jetson power-monitoring docs for L4T R32 and R35):

* L4T R32 / JetPack 4 (TX1, TX2, Nano, Xavier): the `ina3221x` iio driver,
  `/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/` with `rail_name_K` and
  `in_powerK_input` (mW), `in_voltageK_input` (mV), `in_currentK_input` (mA), K = 0..2.
  TX2: 0-0040 carries VDD_SYS_GPU, VDD_SYS_SOC, VDD_4V0_WIFI; 0-0041 VDD_IN, VDD_SYS_CPU, VDD_SYS_DDR.
* L4T R35+ / JetPack 5-6 (Xavier, Orin): the mainline `ina3221` hwmon driver,
  `/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonX/` with `inK_label`, `inK_input` (mV)
  and `currK_input` (mA), K = 1..3; power = V x I. Channel 7 ("sum of shunt voltages") and
  labels containing "NC" (not connected) are skipped, as jetson-stats does.

`watts` is the rail named by `:RAIL` when given, else the module input (VDD_IN, or POM_5V_IN on a
Nano), else the sum of all rails (Xavier R32 has no input rail). Options: `root=DIR` (sysfs tree).
Reads keep each attribute open and pread() it; faster than jtop's service, which re-reads the same
files once per interval. The chip converts every few ms with the L4T default averaging, so polling
faster than ~100 Hz mostly repeats values.
"""
import glob
import os

from hw.meters.base import Meter, MeterUnavailable, Sample, SysfsValue, now, read_text

TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
DRIVER_GLOB = "sys/bus/i2c/drivers/ina3221*/*-*"


def find_rails(root="/"):
    """[(name, kind, paths)] for every INA3221 channel under `root`; kind 'power' (mW) or 'vi' (mV, mA)."""
    rails = []
    for dev in sorted(glob.glob(os.path.join(root, DRIVER_GLOB))):
        for iio in sorted(glob.glob(os.path.join(dev, "iio:device*"))):
            for name_path in sorted(glob.glob(os.path.join(iio, "rail_name_*"))):
                k = name_path.rsplit("_", 1)[1]
                name = read_text(name_path)
                power = os.path.join(iio, "in_power%s_input" % k)
                if name and os.path.exists(power):
                    rails.append((name, "power", (power,)))
        for hwmon in sorted(glob.glob(os.path.join(dev, "hwmon", "hwmon*"))):
            for label_path in sorted(glob.glob(os.path.join(hwmon, "in*_label"))):
                k = os.path.basename(label_path)[2:-len("_label")]
                name = read_text(label_path)
                volt = os.path.join(hwmon, "in%s_input" % k)
                curr = os.path.join(hwmon, "curr%s_input" % k)
                if not name or "NC" in name.split() or k == "7":
                    continue
                if os.path.exists(volt) and os.path.exists(curr):
                    rails.append((name, "vi", (volt, curr)))
    return rails


class Ina3221Meter(Meter):
    kind = "ina3221"
    rate_hz = 1000.0

    def open(self):
        root = self.options.get("root", "/")
        found = find_rails(root)
        if not found:
            raise MeterUnavailable(
                "no INA3221 power monitor under %s (expected a Jetson: L4T R32 "
                "ina3221x/*/iio:device*/rail_name_N or R35+ ina3221/*/hwmon/hwmon*/inN_label)"
                % os.path.join(root, DRIVER_GLOB))
        names = [name for name, _, _ in found]
        if self.arg and self.arg not in names:
            raise MeterUnavailable("INA3221 rail %r not found; rails here: %s" % (self.arg, ", ".join(names)))
        self.close()
        self._rails = []
        try:
            for name, kind, paths in found:
                self._rails.append((name, kind, [SysfsValue(p) for p in paths]))
        except (IOError, OSError) as exc:
            self.close()
            raise MeterUnavailable("cannot read INA3221 sysfs node %s: %s" % (exc.filename, exc.strerror))
        self.rail_names = names
        if self.arg:
            self._total = self.arg
        else:
            self._total = next((n for n in TOTAL_RAILS if n in names), None)

    def read(self):
        rails = {}
        for name, kind, values in self._rails:
            if kind == "power":
                rails[name] = values[0].read_int() / 1000.0
            else:
                rails[name] = values[0].read_int() * values[1].read_int() / 1e6
        t = now()
        watts = rails[self._total] if self._total else sum(rails.values())
        return Sample(t, watts, rails)

    def close(self):
        for _, _, values in getattr(self, "_rails", []):
            for v in values:
                v.close()
        self._rails = []
