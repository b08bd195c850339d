"""`ebt meters`, `ebt meters watch`, `ebt meters idle` and `ebt measure`: power meters from the shell.

* `ebt meters [--json]` probes each on-device meter (`auto` candidates) once and says why each works
  or not, and lists serial ports where a laptop-side meter could be.
* `ebt meters watch --meter SPEC [--rate HZ] [--seconds N]` prints live watts.
* `ebt meters idle --meter SPEC --seconds N [--json]` measures the idle baseline (mean W) that
  records keep next to gross energy (`net_energy_j`).
* `ebt measure --meter SPEC [--rate HZ] [--json] [--trace DIR] [--idle-w W] -- CMD ...` runs CMD while
  sampling, then reports seconds, joules, mean W, samples, coverage and the energy's validity (human summary on stderr;
  with --json one JSON object as the last line of stdout) and exits with CMD's exit code.
* `ebt meters agree --meter A --meter B [--window-s S] [--results DIR]` checks meter A against the
  reference meter B as MLPerf Power accepts a cheaper meter: idle, then the two built-in training loads
  (`experiments.load`), five windows of S seconds (default 60) each, Olympic-scored; prints the ratio
  B/A, gain and offset with their uncertainties (`analysis.agreement`) and stores them under
  `results/calibrations/` for this board and meter pair. A run applies one with
  `--set meter_calibration=NAME`.
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

from analysis import agreement
from experiments import paths
from harness.cli import options
from harness.errors import EbtError, UsageError
from hw.platform import board as board_name
from hw.energy import accuracy_of, integrate, validity
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
    _register_agree(actions)


def _register_agree(actions: argparse._SubParsersAction) -> None:
    agree = actions.add_parser(
        "agree", help="check meter A against a reference meter B (idle + two loads, five windows each)",
        description="MLPerf Power's meter acceptance: idle, then two built-in training loads, five windows each, "
                    "Olympic-scored; stores the ratio B/A and the offset under results/calibrations/.")
    options.meter(agree, "give it twice: the meter checked (A), then the reference meter (B)", several=True)
    agree.add_argument("--rate", type=float, default=10.0, help="sampling rate in Hz (default 10)")
    agree.add_argument("--window-s", type=float, default=60.0, help="each window's length (default 60 s)")
    agree.add_argument("--json", action="store_true", help="print the stored agreement as one JSON object")
    agree.add_argument("--target", default="local", help="where the loads run: local (the machine with both meters)")
    options.results(agree, "results folder: the agreement goes to its calibrations/")
    agree.set_defaults(func=cmd_agree)


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
            out["spikes"] = sampling.stats["spikes"]
        out["validity"] = validity(out["samples"], out["seconds"], out["coverage"], out["energy_j"],
                                   out["uncertainty_j"])
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
    if out["validity"]["valid"] is False:
        text += "; not valid: " + "; ".join(out["validity"]["reasons"])
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


def _load_windows(level: str, window_s: float) -> list[tuple[float, float]]:
    """Run the built-in load `level` (none for idle) and time WINDOWS windows of `window_s` on it."""
    proc = None
    if level != "idle":
        proc = subprocess.Popen([sys.executable, "-m", "experiments.load", level], stdout=subprocess.PIPE,
                                universal_newlines=True)
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise EbtError(f"the built-in load {level!r} did not start (exit code {proc.wait()}); "
                           f"try `{sys.executable} -m experiments.load {level} --seconds 5`")
    try:
        spans = []
        for _ in range(agreement.WINDOWS):
            t0 = time.time()
            time.sleep(window_s)
            spans.append((t0, time.time()))
        return spans
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def _window_means(folder: Path, spans: list[tuple[float, float]]) -> list[Optional[float]]:
    from hw.trace import read_trace  # numpy: only when integrating

    trace = read_trace(str(folder))
    return [integrate(trace, t0, t1).mean_w for t0, t1 in spans]


def _agree_args(args: argparse.Namespace) -> tuple[str, str]:
    given = options.meters_given(args) or []
    if len(given) != 2:
        raise UsageError("ebt meters agree: give --meter twice, the meter checked then the reference, e.g. "
                         "--meter ina3221 --meter scpi:tcp://wt310:10001")
    if args.window_s <= 0:
        raise UsageError("ebt meters agree: --window-s must be > 0 (MLPerf: 60)")
    if args.target != "local":
        raise UsageError("ebt meters agree runs the loads on this machine: run it on the board with both meters "
                         "reachable from it (a laptop meter over a serial cable or LAN), not with --target")
    return given[0], given[1]


def cmd_agree(args: argparse.Namespace) -> int:
    spec_a, spec_b = _agree_args(args)
    meters = [_open(spec_a, required=True)]
    try:
        meters.append(_open(spec_b, required=True))
    except EbtError:
        meters[0].close()
        raise
    from hw.sampler import PowerSampler  # numpy: only when sampling

    folder = Path(tempfile.mkdtemp(prefix="ebt-agree-"))
    samplers = [PowerSampler(m, str(folder / name), rate_hz=args.rate) for m, name in zip(meters, "ab")]
    try:
        for sampler in samplers:
            sampler.start()
        spans = {level: _load_windows(level, args.window_s) for level in agreement.LEVELS}
    finally:
        for sampler, meter in zip(samplers, meters):
            sampler.stop()
            meter.close()
    try:
        levels = [agreement.Level(level, _window_means(folder / "a", spans[level]),
                                  _window_means(folder / "b", spans[level])) for level in agreement.LEVELS]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return _store_agreement(args, meters, levels)


def _store_agreement(args: argparse.Namespace, meters: list, levels: list) -> int:
    infos = [m.info() for m in meters]
    try:
        result = agreement.agreement(levels, *[accuracy_of(i)[:2] for i in infos])
    except agreement.AgreementError as err:
        raise EbtError(f"ebt meters agree: {err}") from err
    board = board_name()
    calibration = {"name": agreement.calibration_name(board, args.meter[0], args.meter[1]), "board": board,
                   "meter_a": args.meter[0], "meter_b": args.meter[1], "meter_a_info": infos[0],
                   "meter_b_info": infos[1], "window_s": args.window_s, "windows": agreement.WINDOWS,
                   "procedure": "idle + two training loads, five windows each, Olympic-scored (MLPerf Power)",
                   "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **result}
    path = agreement.store(args.results, calibration)
    if args.json:
        print(json.dumps(calibration))
    else:
        for lv in result["levels"]:
            print("%-5s A %8.3f W  B %8.3f W  B/A %.4f" % (lv["name"], lv["a_w"], lv["b_w"], lv["ratio"]))
        print("B/A = %.4f +- %.4f; B = %.4f x A %+.3f W -> %s (apply with --set meter_calibration=%s)" % (
            result["ratio"], result["ratio_uncertainty"], result["gain"], result["offset_w"], path,
            calibration["name"]))
    return 0
