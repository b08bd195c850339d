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
`package-0/dram`. Options: `root=DIR`, `zone=NAME`.
"""
import glob
import os

from hw.meters.base import Meter, MeterUnavailable, Sample, SysfsValue, now, read_text

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


class RaplMeter(Meter):
    kind = "rapl"
    counter = True
    rate_hz = 1000.0

    def open(self):
        root = self.options.get("root", "/")
        zones = find_zones(root)
        if not zones:
            raise MeterUnavailable("no RAPL powercap zones under %s (Intel, or AMD Zen with Linux >= 5.8; "
                                   "try `sudo modprobe intel_rapl_msr`)" % os.path.join(root, POWERCAP))
        self.close()
        self._zones = []
        for label, top, zdir in zones:
            path = os.path.join(zdir, "energy_uj")
            try:
                value = SysfsValue(path)
                value.read_int()
            except (IOError, OSError) as exc:
                self.close()
                if getattr(exc, "errno", None) in (1, 13):
                    raise MeterUnavailable("%s: %s" % (path, PERMISSION_FIX))
                raise MeterUnavailable("cannot read %s: %s" % (path, exc))
            wrap = read_text(os.path.join(zdir, "max_energy_range_uj"))
            self._zones.append([label, top, value, int(wrap) + 1 if wrap else 2 ** 32, None, 0])
        labels = [z[0] for z in self._zones]
        zone = self.options.get("zone")
        if zone:
            if zone not in labels:
                raise MeterUnavailable("RAPL zone %r not found; zones here: %s" % (zone, ", ".join(labels)))
            self._total = [zone]
        else:
            self._total = [z[0] for z in self._zones if z[1] and z[0].startswith("package")]
            self._total = self._total or [z[0] for z in self._zones if z[1] and z[0] == "psys"]
            self._total = self._total or [z[0] for z in self._zones if z[1]]
        self.rail_names = labels
        # Prime the counters so that the first read() already has a difference to report.
        self._last_t, self._last_rails_e = self._sample_counters()
        self._last_e = 0.0
        self._last_w = 0.0

    def _sample_counters(self):
        """Advance every zone's unwrapped joule count; returns (t, {label: joules since open})."""
        energies = {}
        for z in self._zones:
            raw = z[2].read_int()
            if z[4] is not None:
                delta = raw - z[4]
                if delta < 0:
                    delta += z[3]
                z[5] += delta
            z[4] = raw
            energies[z[0]] = z[5] / 1e6
        return now(), energies

    def read(self):
        prev_t, prev = self._last_t, self._last_rails_e
        t, energies = self._sample_counters()
        total = sum(energies[label] for label in self._total)
        dt = t - prev_t
        if dt > 0:
            rails = dict((label, (e - prev[label]) / dt) for label, e in energies.items())
            self._last_w = (total - self._last_e) / dt
        else:
            rails = dict((label, 0.0) for label in energies)
        self._last_t, self._last_e, self._last_rails_e = t, total, energies
        return Sample(t, self._last_w, rails, energy_j=total)

    def close(self):
        for z in getattr(self, "_zones", []):
            z[2].close()
        self._zones = []
