"""What a run needs on this machine, as one JSON object: `python3 -m hw.probe [options]`; `ebt doctor` runs
`python3 -m experiments.probe`, which adds the datasets (their layout is `experiments.datasets`').

Runs under the board's Python (3.6 on JetPack 4.6) and never fails on a missing package: each part reports
what it found or the error, and the laptop turns that into checks with fixes. Nothing is created: the run
root's free space and write access are read from its nearest existing folder.

    python3 -m hw.probe --run-root ~/ebt/runs --meter ina3221

Keys: python, executable, packages {name: version or null}, torch {version, cuda, device} or {error},
disk {path, existing, free_mb,
writable}, meters [{spec, watts, info} or {spec, error} or {spec, none}], idle {idle_w, samples} when
asked (of the first meter), platform (`hw.platform.device_info()`), clocks {cpu_locked, gpu_locked,
detail} (min == max frequency is what `jetson_clocks` leaves), time (this clock, seconds since the epoch),
board [{power_mode, clocks, ok, detail}] (one per --board: whether `hw.board` could set it; nothing is
changed) and board_restored (with --boards-dir: what a killed run had left changed on this board, now put
back by `hw.board.recover`, or null).
"""
import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time

PACKAGES = ("torch", "torchvision", "numpy", "yaml", "serial", "jtop")


def _version(name):
    if name == "torchvision":  # importing it costs seconds and only CIFAR/ImageNet need it: read its version file
        return _file_version(name)
    try:
        module = __import__(name)
    except Exception:  # a broken install raises anything at import: report it as absent
        return None
    return str(getattr(module, "__version__", getattr(module, "VERSION", "installed")))


def _file_version(name):
    import importlib.util
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        try:
            with open(os.path.join(folder, "version.py")) as fh:
                match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)", fh.read(), re.M)
            return match.group(1) if match else "installed"
        except OSError:
            continue
    return "installed"


def torch_state():
    try:
        import torch
    except Exception as exc:
        return {"error": "%s: %s" % (type(exc).__name__, exc)}
    cuda = bool(torch.cuda.is_available())
    return {"version": torch.__version__, "cuda": cuda,
            "device": torch.cuda.get_device_name(0) if cuda else None}


def disk_state(path):
    path = os.path.abspath(os.path.expanduser(path))
    existing = path
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    st = os.statvfs(existing)
    return {"path": path, "existing": existing, "free_mb": st.f_bavail * st.f_frsize / 1e6,
            "writable": os.access(existing, os.W_OK | os.X_OK)}


def meter_state(spec, idle_seconds):
    from hw.meters import MeterError, first_line, open_meter
    try:
        meter = open_meter(spec)
    except (ValueError, MeterError, OSError) as exc:
        return {"spec": spec, "error": first_line(exc)}, None
    if meter is None:
        return {"spec": spec, "none": True}, None
    try:
        state = {"spec": spec, "watts": meter.read().watts, "info": meter.info()}
        idle = None
        if idle_seconds > 0:
            from hw.sampler import measure_idle
            with tempfile.TemporaryDirectory(prefix="ebt-probe-idle-") as folder:
                res = measure_idle(meter, idle_seconds, folder)[0]
            idle = {"idle_w": res.mean_w, "idle_std_w": res.std_w, "samples": res.samples}
        return state, idle
    except (MeterError, OSError) as exc:
        return {"spec": spec, "error": "opened but reading failed: %s" % first_line(exc)}, None
    finally:
        meter.close()


def clocks_state(root="/"):
    from hw.platform import clock_locks
    cpu, gpu = clock_locks(root)
    return {"cpu_locked": cpu, "gpu_locked": gpu}


def board_state(power_mode, clocks):
    from hw import board
    try:
        found = board.check(power_mode, clocks)
    except board.BoardError as err:
        return {"power_mode": power_mode, "clocks": clocks, "ok": False, "detail": str(err)}
    return {"power_mode": power_mode, "clocks": clocks, "ok": True,
            "detail": "settable: %s" % ", ".join(filter(None, [board.label(found["mode"]), clocks and "clocks max"]))}


def probe(args):
    from hw.platform import device_info
    report = {"python": platform.python_version(), "executable": sys.executable,
              "packages": {name: _version(name) for name in PACKAGES}, "torch": torch_state(),
              "disk": disk_state(args.run_root) if args.run_root else None,
              "platform": device_info(), "clocks": clocks_state(), "meters": [], "idle": None}
    for i, spec in enumerate(args.meter):
        state, idle = meter_state(spec, args.idle_seconds if i == 0 else 0.0)
        report["meters"].append(state)
        report["idle"] = report["idle"] or idle
    report["board"] = [board_state(*(None if v == "-" else v for v in pair)) for pair in args.board]
    if args.boards_dir:
        from hw.board import recover
        report["board_restored"] = recover(args.boards_dir)
    report["time"] = time.time()
    return report


def parser(prog="python3 -m hw.probe"):
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.strip().splitlines()[0])
    ap.add_argument("--run-root", default=None, help="folder the run folders go to (not created)")
    ap.add_argument("--meter", action="append", default=[], help="meter spec to open and read once")
    ap.add_argument("--idle-seconds", type=float, default=0.0, help="also measure the first meter's idle baseline")
    ap.add_argument("--board", nargs=2, action="append", default=[], metavar=("POWER_MODE", "CLOCKS"),
                    help="check that this power mode and clocks setting (- for null) can be set")
    ap.add_argument("--boards-dir", default=None,
                    help="restore what a killed run left changed on this board (its saved state there)")
    return ap


def main(argv=None):
    print(json.dumps(probe(parser().parse_args(argv)), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
