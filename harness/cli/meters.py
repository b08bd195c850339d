"""`ebt meters`, `ebt meters watch`, `ebt meters idle` and `ebt measure`: power meters from the shell.

* `ebt meters [--json]` probes each on-device meter (`auto` candidates) once and says why each works
  or not, and lists serial ports where a laptop-side meter could be.
* `ebt meters watch --meter SPEC [--rate HZ] [--seconds N]` prints live watts.
* `ebt meters idle --meter SPEC --seconds N [--json]` measures the idle baseline (mean W) that
  records keep next to gross energy (`net_energy_j`).
* `ebt measure --meter SPEC [--rate HZ] [--json] [--trace DIR] [--idle-w W] -- CMD ...` runs CMD while
  sampling, then reports seconds, joules, mean W, samples and coverage (human summary on stderr;
  with --json one JSON object as the last line of stdout) and exits with CMD's exit code.
"""
from __future__ import annotations

import argparse
import glob
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from experiments import paths
from harness.errors import EbtError, UsageError
from hw.meters import (
    AUTO,
    AUTO_ORDER,
    LAPTOP_KINDS,
    MeterSpecError,
    MeterUnavailable,
    open_meter,
    probe,
)

from . import options

log = logging.getLogger(__name__)

SERIAL_GLOBS = ("/dev/serial/by-id/*", "/dev/ttyUSB*", "/dev/ttyACM*", "/dev/rfcomm*")


def register(subparsers: argparse._SubParsersAction) -> None:
    meters = subparsers.add_parser("meters", help="list power meters that work here (watch, idle: see -h)",
                                   description="Probe each power meter once and say why it works or not.")
    meters.add_argument("--json", action="store_true", help="print one JSON object")
    meters.set_defaults(func=cmd_list)
    actions = meters.add_subparsers(dest="meters_action", metavar="ACTION")

    watch = actions.add_parser("watch", help="print live watts")
    _meter_args(watch)
    watch.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: Ctrl-C)")
    options.trace(watch)
    watch.set_defaults(func=cmd_watch)

    idle = actions.add_parser("idle", help="measure the idle baseline (mean W over N seconds)")
    _meter_args(idle)
    idle.add_argument("--seconds", type=float, default=30.0, help="how long to sample (default 30)")
    idle.add_argument("--json", action="store_true", help="print one JSON object")
    options.trace(idle)
    idle.set_defaults(func=cmd_idle)

    measure = subparsers.add_parser("measure", help="run a command and measure its energy",
                                    description="Run CMD while sampling power; report its energy.",
                                    usage="ebt measure [--meter SPEC] [--rate HZ] [--json] [--trace DIR] "
                                          "[--idle-w W] -- CMD [ARG ...]")
    _meter_args(measure)
    measure.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    options.trace(measure)
    measure.add_argument("--idle-w", type=float, default=None, help="idle baseline in W: also report net energy")
    measure.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    measure.set_defaults(func=cmd_measure)


def _meter_args(parser: argparse.ArgumentParser) -> None:
    options.meter(parser, "power meter", default=AUTO)
    parser.add_argument("--rate", type=float, default=10.0, help="sampling rate in Hz (default 10)")


def _open(spec: str, required: bool = False) -> Any:
    """The opened meter (None for `none` or an empty `auto`, an error when `required`)."""
    try:
        meter = open_meter(spec)
    except (MeterSpecError, MeterUnavailable) as exc:
        raise UsageError("meter %s: %s" % (spec, exc)) from exc
    if meter is None and required:
        raise EbtError("no meter (spec %s): name one with --meter, e.g. --meter ina3221 or --meter "
                       "wattsup:/dev/ttyUSB0; `ebt meters` lists what works here" % spec)
    return meter


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for kind in AUTO_ORDER:
        ok, why = probe(kind)
        rows.append({"meter": kind, "works": ok, "detail": why})
    ports = sorted({p for pattern in SERIAL_GLOBS for p in glob.glob(pattern)})
    if args.json:
        print(json.dumps({"meters": rows, "serial_ports": ports}))
        return 0
    for row in rows:
        print("%-11s %-3s  %s" % (row["meter"], "ok" if row["works"] else "no", row["detail"]))
    if ports:
        for port in ports:
            print("serial     ?    %s: name its protocol, e.g. --meter %s" % (
                port, " | ".join("%s:%s" % (k, port) for k in LAPTOP_KINDS)))
    else:
        print("serial     -    no serial ports (/dev/ttyUSB*, /dev/ttyACM*, /dev/serial/by-id/*)")
    picked = next((r["meter"] for r in rows if r["works"]), None)
    print("auto picks: %s" % (picked or "none (energy stays null)"))
    return 0


class _Sampling:
    """A sampler into --trace or a temporary folder that is removed afterwards."""

    def __init__(self, meter: Any, out: Optional[Path], rate: float):
        from hw.sampler import PowerSampler  # numpy: only when sampling (`ebt --help` starts without it)
        self.meter = meter
        self.tmp = None if out else tempfile.mkdtemp(prefix="ebt-power-")
        self.folder = Path(out) if out else Path(self.tmp)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sampler = PowerSampler(meter, str(self.folder), rate_hz=rate) if meter else None
        self.stats: dict = {}

    def __enter__(self) -> "_Sampling":
        if self.sampler:
            self.sampler.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.sampler:
            self.stats = self.sampler.stop()
        if self.meter:
            self.meter.close()

    def result(self, t0: float, t1: float, idle_w: Optional[float] = None) -> dict:
        if not self.meter:
            return {"energy_j": None, "net_energy_j": None, "mean_w": None, "samples": 0, "coverage": 0.0,
                    "gaps": [], "method": None, "uncertainty_j": None}
        from hw.energy import integrate
        from hw.trace import read_trace
        res = integrate(read_trace(str(self.folder)), t0, t1, idle_w=idle_w)._asdict()
        res.pop("seconds")
        res.pop("idle_w")
        return dict(res)

    def cleanup(self) -> None:
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def cmd_measure(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("ebt measure: give the command after --, e.g. ebt measure -- python3 train.py")
    meter = _open(args.meter)
    sampling = _Sampling(meter, args.trace, args.rate)
    try:
        with sampling:
            t_start = time.time()
            try:
                rc = subprocess.call(cmd)
            except OSError as exc:
                print("ebt measure: cannot run %s: %s" % (cmd[0], exc), file=sys.stderr)
                rc = 127
            except KeyboardInterrupt:
                rc = 130
            t_end = time.time()
        out = {"command": cmd, "exit_code": rc, "seconds": t_end - t_start, "t_start": t_start, "t_end": t_end,
               "meter": meter.info() if meter else None, "idle_w": args.idle_w}
        out.update(sampling.result(t_start, t_end, args.idle_w))
        if args.trace:
            out["trace"] = paths.power_csv(sampling.folder)
        if sampling.stats:
            out["malformed"] = sampling.stats["malformed"]
            out["reconnects"] = sampling.stats["reconnects"]
    finally:
        sampling.cleanup()
    print(_summary(out), file=sys.stderr)
    if args.json:
        print(json.dumps(out))
    return rc if rc >= 0 else 128 - rc


def _summary(out: dict) -> str:
    head = "%.2f s" % out["seconds"]
    if out["energy_j"] is None:
        return head + ", energy not measured (meter: none)"
    text = "%s, %.3f J +- %.3f J, mean %.3f W, %d samples, coverage %.1f%% (%s, scope %s)" % (
        head, out["energy_j"], out["uncertainty_j"], out["mean_w"] or 0.0, out["samples"], 100 * out["coverage"],
        out["meter"]["spec"], out["meter"].get("scope") or "unknown")
    if out.get("net_energy_j") is not None:
        text += ", net of idle %.3f J" % out["net_energy_j"]
    return text


def cmd_idle(args: argparse.Namespace) -> int:
    from hw.sampler import measure_idle
    meter = _open(args.meter, required=True)
    tmp = None if args.trace else tempfile.mkdtemp(prefix="ebt-power-")
    folder = Path(args.trace) if args.trace else Path(tmp)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        res, t0, t1 = measure_idle(meter, args.seconds, str(folder), rate_hz=args.rate)
        res = res._asdict()
    finally:
        meter.close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    out = {"idle_w": res["mean_w"], "idle_std_w": res["std_w"], "seconds": t1 - t0, "energy_j": res["energy_j"],
           "samples": res["samples"], "coverage": res["coverage"], "t_start": t0, "t_end": t1,
           "meter": meter.info()}
    if args.json:
        print(json.dumps(out))
    else:
        idle_w = float("nan") if out["idle_w"] is None else out["idle_w"]
        std_w = float("nan") if out["idle_std_w"] is None else out["idle_std_w"]
        print("idle: %.3f W (spread %.3f W) over %.1f s (%d samples, coverage %.1f%%, %s); records keep it "
              "with --set meter_idle_w=%.3f --set meter_idle_std_w=%.3f" % (
                  idle_w, std_w, out["seconds"], out["samples"], 100 * out["coverage"], meter.spec, idle_w, std_w))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    meter = _open(args.meter, required=True)
    sampling = _Sampling(meter, args.trace, args.rate)
    print("watching %s (Ctrl-C to stop)" % meter.spec)
    shown = None
    try:
        with sampling:
            t0 = time.time()
            while args.seconds is None or time.time() - t0 < args.seconds:
                latest = sampling.sampler.latest()
                if latest and latest != shown:
                    shown = latest
                    print("%s  %8.3f W" % (time.strftime("%H:%M:%S", time.localtime(latest[0])), latest[1]),
                          flush=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sampling.cleanup()
    return 0
