"""On-board power monitors of Jetson modules, read straight from sysfs (`ina3221[:RAIL[+RAIL...]]`).

Three driver layouts (jetson-stats `jtop/core/power.py`, the Linux `ina3221` and `ina238` hwmon docs):

* L4T R32 / JetPack 4 (TX1, TX2, Nano, Xavier): the `ina3221x` iio driver,
  `/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/` with `rail_name_K` and
  `in_powerK_input` (mW), K = 0..2.
* L4T R35+ (Xavier, Orin, Thor's module rails): the mainline `ina3221` hwmon driver,
  `/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonX/` with `inK_label`, `inK_input` (mV),
  `currK_input` (mA), K = 1..3, power = V x I; `update_interval` (ms) is how often the chip has a
  new value (it caps the rate and is recorded), `samples` its averaging. Channel 7 ("sum of shunt
  voltages") and `NC` labels are skipped.
* Thor (R38): the carrier board's system input on an INA238, `/sys/bus/i2c/drivers/ina238/*/hwmon/
  hwmonX/power1_input` (uW), rail `VIN` (or its `in1_label`).

Point or average: an INA3221 whose hwmon `samples` is above 1 averages that many conversions, and
its `update_interval` (= channels x samples x conversion times, kernel `ina3221` documentation) is the
window of each value; with `samples` 1, or in the R32 iio layout (no averaging exposed), a value is a
point sample. The INA238 averages 16 conversions of 1052 us each of bus voltage, shunt voltage and
temperature (Linux `drivers/hwmon/ina238.c`, INA238_ADC_CONFIG_DEFAULT 0xfb6a): about 50 ms per value,
unless the node's own `samples` / `update_interval` say otherwise. A sum is an average only when each
of its rails is, over the shortest of their windows.

`watts` follows the per-board rule of `hw.meters.rails` (AGX Orin: VDD_GPU_SOC + VDD_CPU_CV +
VIN_SYS_5V0; Thor: VIN; ...), or the rails the spec names (`ina3221:VDD_IN+VDD_MUX`).
Options: `root=DIR` (a sysfs tree instead of `/`). A failed read of one node (an I2C `EIO`) skips
that sample.
"""
import glob
import os

from hw.meters.base import Meter, MeterUnavailable, Sample, SysfsValue, now, read_text, text
from hw.meters.rails import JETSON_MAX_W, parse_rail_sum, pick_total

DRIVERS = "sys/bus/i2c/drivers"


class PowerReader:
    """A channel that reports power itself: `in_powerK_input` in mW (iio) or `power1_input` in uW."""

    def __init__(self, name, path, scale):
        self.name, self.paths, self.scale = name, (path,), scale
        self._value = None

    def open(self):
        self._value = SysfsValue(self.paths[0])

    def watts(self):
        return self._value.read_int() * self.scale

    def close(self):
        if self._value is not None:
            self._value.close()
            self._value = None


class VoltCurrReader:
    """A hwmon channel with voltage (mV) and current (mA): power = V x I."""

    def __init__(self, name, volt, curr):
        self.name, self.paths = name, (volt, curr)
        self._values = []

    def open(self):
        for path in self.paths:
            self._values.append(SysfsValue(path))

    def watts(self):
        return self._values[0].read_int() * self._values[1].read_int() / 1e6

    def close(self):
        for value in self._values:
            value.close()
        self._values = []


def iio_channels(dev):
    for iio in sorted(glob.glob(os.path.join(dev, "iio:device*"))):
        for name_path in sorted(glob.glob(os.path.join(iio, "rail_name_*"))):
            power = os.path.join(iio, "in_power%s_input" % name_path.rsplit("_", 1)[1])
            name = read_text(name_path)
            if name and os.path.exists(power):
                yield PowerReader(name, power, 1e-3)


def hwmon_channels(hwmon):
    for label_path in sorted(glob.glob(os.path.join(hwmon, "in*_label"))):
        k = os.path.basename(label_path)[2:-len("_label")]
        name = read_text(label_path)
        volt, curr = os.path.join(hwmon, "in%s_input" % k), os.path.join(hwmon, "curr%s_input" % k)
        if name and "NC" not in name.split() and k != "7" and os.path.exists(volt) and os.path.exists(curr):
            yield VoltCurrReader(name, volt, curr)


def ina238_channels(hwmon):
    power = os.path.join(hwmon, "power1_input")
    if os.path.exists(power):
        yield PowerReader(read_text(os.path.join(hwmon, "in1_label")) or "VIN", power, 1e-6)


# The INA238 driver's default: 16 averages of (bus + shunt + temperature) conversions of 1052 us.
INA238_SAMPLES = 16
INA238_WINDOW_S = 16 * 3 * 1.052e-3


def _number(path):
    value = read_text(path)
    return int(value) if value and value.isdigit() else None


def hwmon_timing(hwmon, ina238=False):
    """(update_interval s or None, sampling kind, window s) of one hwmon node."""
    ms, samples = _number(os.path.join(hwmon, "update_interval")), _number(os.path.join(hwmon, "samples"))
    period = ms / 1000.0 if ms else None
    if ina238:
        samples = samples or INA238_SAMPLES
        window = period or INA238_WINDOW_S
    else:
        window = period
    if samples and samples > 1 and window:
        return period, "average", window
    return period, "point", None


def find_rails(root="/"):
    """([reader], {node dir: (update_interval s, sampling kind, window s)}) for every monitor channel."""
    readers, timing = [], {}
    for dev in sorted(glob.glob(os.path.join(root, DRIVERS, "ina3221*", "*-*"))):
        readers.extend(iio_channels(dev))
        for hwmon in sorted(glob.glob(os.path.join(dev, "hwmon", "hwmon*"))):
            readers.extend(hwmon_channels(hwmon))
            timing[hwmon] = hwmon_timing(hwmon)
    for hwmon in sorted(glob.glob(os.path.join(root, DRIVERS, "ina238", "*-*", "hwmon", "hwmon*"))):
        readers.extend(ina238_channels(hwmon))
        timing[hwmon] = hwmon_timing(hwmon, ina238=True)
    return readers, timing


def sampling_of(readers, timing):
    """(kind, window s) of a sum of these readers: an average only if each of them is one."""
    kinds = [timing.get(os.path.dirname(r.paths[0]), (None, "point", None)) for r in readers]
    if kinds and all(k[1] == "average" for k in kinds):
        return "average", min(k[2] for k in kinds)
    return "point", None


def driver_of(path):
    """The kernel driver's name in a `.../drivers/<driver>/<bus>-<addr>/...` path."""
    parts = path.split(os.sep)
    return parts[len(parts) - 1 - parts[::-1].index("drivers") + 1]


class Ina3221Meter(Meter):
    kind = "ina3221"
    rate_hz = 1000.0
    max_w = JETSON_MAX_W
    # TI INA3221 datasheet (SBOS576): gain error <= 0.25 % on bus voltage and on shunt voltage, so
    # <= 0.5 % on V x I; shunt offset <= 80 uV on the 5 mOhm input shunt of an Orin Nano = 16 mA,
    # about 0.08 W at 5 V per rail in the total.
    accuracy_rel = 0.005
    accuracy_source = "TI INA3221 datasheet SBOS576: gain <= 0.25 % on V and I, shunt offset <= 80 uV"
    RAIL_OFFSET_W = 0.08
    OPTIONS = {"root": text}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.wanted = parse_rail_sum(arg)
        self._readers = []
        self.total = None

    def open(self):
        self.close()
        root = self.options.get("root", "/")
        readers, timing = find_rails(root)
        if not readers:
            raise MeterUnavailable(
                "no INA3221/INA238 power monitor under %s (expected a Jetson: L4T R32 ina3221x/*/iio:device*/"
                "rail_name_N, R35+ ina3221/*/hwmon/hwmon*/inN_label, Thor ina238/*/hwmon/hwmon*/power1_input)"
                % os.path.join(root, DRIVERS))
        self.total = pick_total([r.name for r in readers], self.wanted)
        try:
            for reader in readers:
                reader.open()
                self._readers.append(reader)
        except PermissionError as exc:
            self.close()
            raise MeterUnavailable("no permission to read %s: run as a user who can read it" % exc.filename)
        except OSError as exc:
            self.close()
            raise MeterUnavailable("cannot read power monitor node %s: %s" % (exc.filename, exc.strerror))
        self._describe(readers, timing)

    def _describe(self, readers, timing):
        self.rail_names = [r.name for r in readers]
        self.scope = self.total.scope
        self.accuracy_abs_w = self.RAIL_OFFSET_W * len(self.total.rails)
        periods = [t[0] for t in timing.values() if t[0]]
        self.cap_rate(max(periods) if periods else None)
        self.sampling, self.sampling_window_s = sampling_of(
            [r for r in readers if r.name in self.total.rails], timing)
        self.sampling_source = ("hwmon samples / update_interval of the total's rails (INA238: its driver's "
                                "16 x 3 x 1052 us default)" if self.sampling == "average" else
                                "no averaging over the read interval exposed by the total's rails")
        self.provenance = dict(self.total.info(), driver=sorted({driver_of(r.paths[0]) for r in readers}),
                               files={r.name: list(r.paths) for r in readers})

    def read_sample(self):
        rails = {}
        for reader in self._readers:
            rails[reader.name] = reader.watts()
        return Sample(now(), self.total.watts(rails), rails)

    def close(self):
        for reader in self._readers:
            reader.close()
        self._readers = []
