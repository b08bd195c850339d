"""On the board, where the laptop's `ebt` is not installed (Python 3.6):

    python3 -m hw meters                                  # which meters work here, one reading each
    python3 -m hw idle --meter ina3221 --seconds 60       # idle baseline (mean W) as JSON
    python3 -m hw info                                    # board, L4T/JetPack, nvpmodel, clocks, temperatures
"""
import argparse
import json
import sys
import tempfile

from hw.meters import AUTO_ORDER, MeterSpecError, MeterUnavailable, open_meter, probe
from hw.platform import device_info
from hw.sampler import measure_idle


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m hw", description=__doc__.strip().splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    sub.add_parser("meters", help="probe each on-board meter once")
    sub.add_parser("info", help="print the device block a run records, as JSON")
    idle = sub.add_parser("idle", help="measure the idle baseline")
    idle.add_argument("--meter", default="auto")
    idle.add_argument("--seconds", type=float, default=30.0)
    idle.add_argument("--rate", type=float, default=10.0)
    args = ap.parse_args(argv)
    if args.command == "meters":
        for kind in AUTO_ORDER:
            ok, why = probe(kind)
            print("%-11s %-3s %s" % (kind, "ok" if ok else "no", why))
        return 0
    if args.command == "info":
        print(json.dumps(device_info()))
        return 0
    if args.command != "idle":
        ap.print_help()
        return 2
    try:
        meter = open_meter(args.meter)
    except (MeterSpecError, MeterUnavailable) as err:
        print("python3 -m hw idle: %s" % err, file=sys.stderr)
        return 2
    if meter is None:
        print("no meter here (spec %s)" % args.meter, file=sys.stderr)
        return 1
    folder = tempfile.mkdtemp(prefix="ebt-idle-")
    try:
        res, t0, t1 = measure_idle(meter, args.seconds, folder, rate_hz=args.rate)
    finally:
        meter.close()
    print(json.dumps({"idle_w": res.mean_w, "idle_std_w": res.std_w, "seconds": t1 - t0, "samples": res.samples,
                      "coverage": res.coverage, "meter": meter.info(), "trace": folder}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
