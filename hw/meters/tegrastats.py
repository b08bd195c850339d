"""NVIDIA's `tegrastats` utility as a meter (`tegrastats[:RAIL[+RAIL...]]`): runs `tegrastats --interval MS`.

Sources: NVIDIA L4T Developer Guide, "tegrastats Utility", and the jetson-stats parser tests
(rbonghi/jetson_stats `jtop/tests/test_06_tegra_parse.py`). Rail fields are `NAME cur/avg` in mW, with
the unit inline from L4T R35, and three values per rail from JetPack 7.2 (L4T R39.2):

* TX2 (R32):       `VDD_SYS_GPU 152/152 VDD_SYS_SOC 381/381 VDD_4V0_WIFI 0/0 VDD_IN 1752/1752 ...`
* Xavier (R32):    `GPU 0/0 CPU 311/311 SOC 1087/1087 CV 0/0 VDDRQ 155/155 SYS5V 1779/1779`
* Orin (R35/R36):  `VDD_IN 4834mW/4834mW VDD_CPU_GPU_CV 556mW/556mW VDD_SOC 1426mW/1426mW`
* AGX Orin (R39.2): `VDD_GPU_SOC 5139mW/5139mW/5139mW VDD_CPU_CV 3268mW/3268mW/3268mW ...`
* Thor (R38):      `VDD_GPU 0mW/0mW VDD_CPU_SOC_MSS 5535mW/5535mW VIN_SYS_5V0 5040mW/5040mW VIN 16802mW/16802mW`
* Thor at idle:    `VDD_GPU -392mW/-392mW ...`: a rail reads below zero (the monitor's offset), and is kept.

Only the first value (the current reading) is used: the others are averages since tegrastats started.
Fields such as `RAM 2303/7854MB` never match (a unit other than mW follows). Rails are read from every
line, signed. The total follows the per-board rule of `hw.meters.rails` applied to the rails seen so
far, or the rails the spec names: a rail that first appears after open re-applies the rule (noted in
`info()`), so it is never silently left out of a sum.
A reading is a point sample: tegrastats prints the monitor's latest value once per interval (L4T
Developer Guide, "tegrastats Utility"), and the monitor's own averaging window is shorter than that.
Options: `interval_s=S` (default 0.1), `cmd=PATH` (the executable; default `tegrastats` on PATH).
"""
import re
import shutil
import subprocess

from hw.meters.base import (MalformedReading, Meter, MeterDisconnected, MeterUnavailable, Sample, now, positive,
                            text)
from hw.meters.ina3221 import Ina3221Meter
from hw.meters.rails import JETSON_MAX_W, follow, parse_rail_sum, pick_total

RAIL_RE = re.compile(r"(?:^|\s)([A-Z][A-Z0-9_]*) (-?\d+)(?:mW)?(?:/-?\d+(?:mW)?)+(?=\s|$)")


def parse_rails(line):
    """{rail: watts} from one tegrastats line; MalformedReading when it has no rails."""
    rails = {name: int(cur) / 1000.0 for name, cur in RAIL_RE.findall(line)}
    if not rails:
        raise MalformedReading("no power rails in tegrastats line %r" % line[:80])
    return rails


def parse_line(line, wanted=None):
    """(total watts, {rail: watts}) from one line by the per-board rule (or the `wanted` rails)."""
    rails = parse_rails(line)
    return pick_total(rails, wanted).watts(rails), rails


class TegrastatsMeter(Meter):
    kind = "tegrastats"
    paced = True
    max_w = JETSON_MAX_W
    # The same INA3221 (and Thor INA238) channels as `ina3221`; tegrastats rounds to 1 mW.
    accuracy_rel = Ina3221Meter.accuracy_rel
    accuracy_source = Ina3221Meter.accuracy_source
    sampling_source = "tegrastats prints the monitor's latest value once per interval"
    OPTIONS = {"interval_s": positive, "cmd": text}

    def __init__(self, spec, arg=None, options=None):
        super().__init__(spec, arg, options)
        self.wanted = parse_rail_sum(arg)
        self.interval_ms = max(1, int(round(1000 * self.options.get("interval_s", 0.1))))
        self.rate_hz = 1000.0 / self.interval_ms
        self.total = None
        self.seen = set()
        self.exe = None
        self._proc = None

    def open(self):
        cmd = self.options.get("cmd", "tegrastats")
        exe = shutil.which(cmd)
        if not exe:
            raise MeterUnavailable("`%s` not found: tegrastats ships with L4T on Jetson boards (/usr/bin/tegrastats)"
                                   % cmd)
        self._proc = subprocess.Popen([exe, "--interval", str(self.interval_ms)], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, universal_newlines=True)
        try:
            self._pick_total(exe)
        except MeterUnavailable:
            self.close()
            raise

    def _pick_total(self, exe):
        """Fix the total's rails from the first line that has any (a line costs one interval)."""
        for _ in range(5):
            line = self._proc.stdout.readline()
            if not line:
                break
            try:
                rails = parse_rails(line)
            except MalformedReading:
                continue
            self.seen = set(rails)
            self.exe = exe
            self._use(pick_total(rails, self.wanted))
            self.update_period_s = self.interval_ms / 1000.0
            return
        raise MeterUnavailable("%s printed no power rails in its first lines (exit code %s)"
                               % (exe, self._proc.poll()))

    def _use(self, total):
        self.total = total
        self.scope = total.scope
        self.accuracy_abs_w = Ina3221Meter.RAIL_OFFSET_W * len(total.rails)
        self.provenance = dict(total.info(), cmd=self.exe, interval_ms=self.interval_ms)

    def _follow(self, rails):
        """A rail not seen before: the rule again over every rail seen, never a sum that leaves it out."""
        total, note = follow(self.total, self.seen, rails, self.wanted)
        if note:
            self.notes.append(note)
            self._use(total)

    def read_sample(self):
        line = self._proc.stdout.readline()
        if not line:
            raise MeterDisconnected("tegrastats exited (code %s)" % self._proc.poll())
        t = now()
        rails = parse_rails(line.strip())
        if not self.seen.issuperset(rails):
            self._follow(rails)
        try:
            return Sample(t, self.total.watts(rails), rails)
        except KeyError as exc:
            raise MalformedReading("tegrastats line without rail %s: %r" % (exc, line[:80]))

    def close(self):
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
