"""NVIDIA's `tegrastats` utility as a meter (`tegrastats`): runs `tegrastats --interval MS`.

Source: NVIDIA L4T Developer Guide, "tegrastats Utility" (R32 and R35), and the jetson-stats parser
(`VOLTS()` in rbonghi/jetson_stats `jtop/core/tegra_parse.py`). Rail fields are `NAME cur/avg` in
mW, with the unit written inline on L4T R35+:

* TX2 (R32):    `VDD_SYS_GPU 152/152 VDD_SYS_SOC 381/381 VDD_4V0_WIFI 0/0 VDD_IN 1752/1752 ...`
* Nano (R32):   `POM_5V_IN 1996/1996 POM_5V_GPU 0/0 POM_5V_CPU 317/317`
* Xavier (R32): `GPU 0/0 CPU 311/311 SOC 1087/1087 CV 0/0 VDDRQ 155/155 SYS5V 1779/1779`
* Orin (R35+):  `VDD_IN 4834mW/4834mW VDD_CPU_GPU_CV 556mW/556mW VDD_SOC 1426mW/1426mW`

Fields such as `RAM 2303/7854MB` never match (a unit other than mW follows the number).
Total: VDD_IN or POM_5V_IN, else the sum of the rails (jetson-stats does the same).
Options: `interval=MS` (default 100), `cmd=PATH` (the executable; default `tegrastats` on PATH).
"""
import os
import re
import subprocess

from hw.meters.base import MalformedReading, Meter, MeterDisconnected, MeterUnavailable, Sample, now, option_float

RAIL_RE = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")


def parse_line(line):
    """(total watts, {rail: watts}) from one tegrastats line; MalformedReading when it has no rails."""
    rails = dict((name, int(cur) / 1000.0) for name, cur, _ in RAIL_RE.findall(line))
    if not rails:
        raise MalformedReading("no power rails in tegrastats line %r" % line[:80])
    for name in TOTAL_RAILS:
        if name in rails:
            return rails[name], rails
    return sum(rails.values()), rails


class TegrastatsMeter(Meter):
    kind = "tegrastats"
    paced = True

    def open(self):
        self.interval_ms = int(option_float(self.options, "interval", 100))
        self.rate_hz = 1000.0 / self.interval_ms
        cmd = self.options.get("cmd", "tegrastats")
        exe = cmd if os.sep in cmd else _which(cmd)
        if not exe or not os.access(exe, os.X_OK):
            raise MeterUnavailable("`%s` not found: tegrastats ships with L4T on Jetson boards (/usr/bin/tegrastats)"
                                   % cmd)
        self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, universal_newlines=True)

    def read(self):
        line = self._proc.stdout.readline()
        if not line:
            raise MeterDisconnected("tegrastats exited (code %s)" % self._proc.poll())
        t = now()
        watts, rails = parse_line(line.strip())
        return Sample(t, watts, rails)

    def close(self):
        proc, self._proc = getattr(self, "_proc", None), None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None:
            proc.stdout.close()


def _which(name):
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
