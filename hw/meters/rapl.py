"""Intel RAPL (and AMD Zen on kernels >= 5.8) energy counters through Linux powercap (`rapl`).

Source: Linux kernel docs, "Power Capping Framework" (Documentation/power/powercap/powercap.rst):
`/sys/class/powercap/intel-rapl:N[:M]/` with `name` (package-0, core, uncore, dram, psys),
`energy_uj` (a counter in microjoules that wraps at `max_energy_range_uj`). Since the fix for
CVE-2020-8694 (Platypus, Nov 2020) `energy_uj` is readable by root only.

A counter meter: `energy_j` in every sample is exact joules since open (wrap-around handled by
adding `max_energy_range_uj + 1` whenever a counter goes backwards between two reads; reads must
therefore come more often than one wrap, ~ minutes at full load, which any sampler rate satisfies).
`watts` is the counter difference over the time between reads. Total = the package zones (top-level
`package-*`), else `psys`; `?zone=NAME` picks one zone instead. Rails: every zone, sub-zones as
`package-0/dram`. Options: `root=DIR`, `zone=NAME`. Scope `package`.
"""
import glob
import os

from hw.meters.base import Meter, MeterUnavailable, Sample, SysfsValue, now, read_text, text

POWERCAP = "sys/class/powercap"
PERMISSION_FIX = (
    "energy_uj is readable only by root since the CVE-2020-8694 fix: run as root, or grant read "
    "access with `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*:*/energy_uj` (reset at boot; make it stick with a udev rule "
    "or systemd-tmpfiles)")


def find_zones(root="/"):
    """[(label, top_level, zone_dir)] for every RAPL zone under `root`."""
    zones = []
    names = {}
    for zdir in sorted(glob.glob(os.path.join(root, POWERCAP, "intel-rapl:*"))):
        zid = os.path.basename(zdir)[len("intel-rapl:"):]
        name = read_text(os.path.join(zdir, "name"), zid)
        names[zid] = name
        top = ":" not in zid
        label = name if top else "%s/%s" % (names.get(zid.split(":")[0], zid.split(":")[0]), name)
        zones.append((label, top, zdir))
    return zones


class _Zone:
    """One powercap zone's counter, unwrapped: `joules()` since the first read."""

    def __init__(self, label, top, zdir):
        self.label, self.top, self.path = label, top, os.path.join(zdir, "energy_uj")
        wrap = read_text(os.path.join(zdir, "max_energy_range_uj"))
        self.wrap = int(wrap) + 1 if wrap else 2 ** 32
        self.value = SysfsValue(self.path)
        self.raw = self.value.read_int()
        self.total_uj = 0

    def joules(self):
        raw = self.value.read_int()
        delta = raw - self.raw
        if delta < 0:
            delta += self.wrap
        self.total_uj += delta
        self.raw = raw
        return self.total_uj / 1e6

    def close(self):
        self.value.close()


class RaplMeter(Meter):
    kind = "rapl"
    counter = True
    rate_hz = 1000.0
    scope = "package"
    sampling = "counter"
    sampling_source = "powercap energy_uj: an energy counter, exact between reads"
    # Intel publishes no accuracy figure for RAPL: the class is unknown (None). No `max_w`: watts is
    # derived from the counter, which is the measurement (a wrap or a slow read may spike it).
    OPTIONS = {"root": text, "zone": text}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self._zones = []
        self._total = []
        self._last = None

    def open(self):
        self.close()
        root = self.options.get("root", "/")
        found = find_zones(root)
        if not found:
            raise MeterUnavailable("no RAPL powercap zones under %s (Intel, or AMD Zen with Linux >= 5.8; "
                                   "try `sudo modprobe intel_rapl_msr`)" % os.path.join(root, POWERCAP))
        for label, top, zdir in found:
            try:
                self._zones.append(_Zone(label, top, zdir))
            except PermissionError:
                self.close()
                raise MeterUnavailable("%s: %s" % (os.path.join(zdir, "energy_uj"), PERMISSION_FIX))
            except OSError as exc:
                self.close()
                raise MeterUnavailable("cannot read %s: %s" % (os.path.join(zdir, "energy_uj"), exc))
        self._total = self._pick_total()
        self.rail_names = [z.label for z in self._zones]
        self.provenance = {"zones": self.rail_names, "total": list(self._total),
                           "files": [z.path for z in self._zones]}
        # Prime the counters so that the first read() already has a difference to report.
        self._last = (now(), {z.label: 0.0 for z in self._zones}, 0.0, 0.0)

    def _pick_total(self):
        labels = [z.label for z in self._zones]
        zone = self.options.get("zone")
        if zone:
            if zone not in labels:
                raise MeterUnavailable("RAPL zone %r not found; zones here: %s" % (zone, ", ".join(labels)))
            return [zone]
        tops = [z.label for z in self._zones if z.top]
        return ([x for x in tops if x.startswith("package")] or [x for x in tops if x == "psys"] or tops)

    def read_sample(self):
        prev_t, prev, prev_total, last_w = self._last
        energies = {z.label: z.joules() for z in self._zones}
        t = now()
        total = sum(energies[label] for label in self._total)
        dt = t - prev_t
        if dt > 0:
            rails = {label: (e - prev[label]) / dt for label, e in energies.items()}
            last_w = (total - prev_total) / dt
        else:
            rails = {label: 0.0 for label in energies}
        self._last = (t, energies, total, last_w)
        return Sample(t, last_w, rails, energy_j=total)

    def close(self):
        for zone in self._zones:
            zone.close()
        self._zones = []
