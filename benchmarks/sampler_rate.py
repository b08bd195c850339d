#!/usr/bin/env python3
"""How fast the power sampler runs, and what it costs, on a sysfs INA3221 meter.

Builds a TX2-shaped INA3221 tree (L4T R32 iio layout, 6 rails) in a temporary folder, then runs
`hw.sampler.PowerSampler` for `--seconds` at 10, 50 and 100 Hz and once unthrottled, printing the
achieved rate and the process CPU time over wall time (% of one core; the main thread only sleeps,
so that is the sampler thread's share; CLOCK_PROCESS_CPUTIME_ID, not tick-based). Goal (issue #3): >= 50 Hz at <= 1% of one core.

    python3 benchmarks/sampler_rate.py [--seconds 5] [--root /]   # --root / reads the real board
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hw.meters import open_meter  # noqa: E402
from hw.sampler import PowerSampler  # noqa: E402

TX2 = {"0-0040": [("VDD_SYS_GPU", 1520), ("VDD_SYS_SOC", 762), ("VDD_4V0_WIFI", 0)],
       "0-0041": [("VDD_IN", 5112), ("VDD_SYS_CPU", 1214), ("VDD_SYS_DDR", 840)]}


def make_tree(root):
    for n, (dev, rails) in enumerate(sorted(TX2.items())):
        iio = os.path.join(root, "sys/bus/i2c/drivers/ina3221x", dev, "iio:device%d" % n)
        os.makedirs(iio)
        for k, (name, mw) in enumerate(rails):
            with open(os.path.join(iio, "rail_name_%d" % k), "w") as fh:
                fh.write(name + "\n")
            with open(os.path.join(iio, "in_power%d_input" % k), "w") as fh:
                fh.write("%d\n" % mw)


def run(spec, rate, seconds, folder, unthrottled=False):
    meter = open_meter(spec)
    if unthrottled:
        meter.rate_hz = 1e9  # lift the meter's cap to find the ceiling of the sampler itself
    try:
        sampler = PowerSampler(meter, os.path.join(folder, "r%s.csv" % rate), rate_hz=rate).start()
        cpu0, wall0 = time.process_time(), time.time()
        time.sleep(seconds)
        cpu1, wall1 = time.process_time(), time.time()
        stats = sampler.stop()
    finally:
        meter.close()
    return stats["achieved_hz"] or 0.0, 100.0 * (cpu1 - cpu0) / (wall1 - wall0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--root", default=None, help="sysfs root to read (default: a temporary TX2 tree)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if root is None:
            root = os.path.join(tmp, "tree")
            make_tree(root)
        spec = "ina3221?root=" + root
        print("meter %s, %.0f s per rate, python %s" % (spec, args.seconds, sys.version.split()[0]))
        print("%-12s %12s %12s" % ("requested", "achieved Hz", "CPU % core"))
        for rate in (10.0, 50.0, 100.0):
            hz, cpu = run(spec, rate, args.seconds, tmp)
            print("%-12s %12.1f %12.2f" % ("%g Hz" % rate, hz, cpu))
        hz, cpu = run(spec, 1e6, args.seconds, tmp, unthrottled=True)
        print("%-12s %12.1f %12.2f" % ("unthrottled", hz, cpu))
        print("highest rate reached: %.0f Hz" % hz)


if __name__ == "__main__":
    main()
