"""`ebt doctor [--target T] [--meter SPEC] [CONFIG]`: is this target ready for a run? One line per check."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import CODE_ROOT
from ..errors import EbtError
from ..preflight import Check, doctor, needs_of
from ..targets import open_target
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check a target before a run: SSH, Python, torch, dataset, disk, meter, "
                                      "clocks",
                       description="Check everything a run on TARGET needs, one line per check: ok, or the "
                                   "problem and its fix (a command or a step of hw/jetson/README.md). Exits "
                                   "non-zero when a run could not work. With CONFIG, also its datasets, "
                                   "meter and checkpoint space.")
    p.add_argument("config", type=Path, nargs="?", help="YAML config whose runs to check for")
    options.target(p)
    options.meter(p, "power meter to open and read")
    options.overrides(p, "override a config key (repeatable), as for ebt run")
    p.add_argument("--idle", type=float, default=0.0, metavar="SECONDS",
                   help="also measure the meter's idle baseline for SECONDS")
    p.set_defaults(func=cmd_doctor)


def _specs(args: argparse.Namespace) -> list[dict]:
    from ..config import load_specs, parse_overrides
    return load_specs(args.config, parse_overrides(args.overrides), options.meters_given(args), args.target)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..config import meter_where
    specs = _specs(args) if args.config else []
    meter = None if specs or args.meter is None else args.meter
    needs = needs_of(specs, meter, meter_where(meter, args.target) if meter else "device")
    target = open_target(args.target, trust_new_host=args.trust_new_host)

    def emit(check: Check) -> None:
        print(check.line(), flush=True)

    try:
        checks = doctor(target, needs, CODE_ROOT, idle_s=args.idle, emit=emit)
    finally:
        target.close()
    failed = [c.name for c in checks if not c.ok and c.blocking]
    if failed:
        raise EbtError(f"{target.url}: not ready ({', '.join(failed)} failed); fix the FAIL lines above and "
                       "run `ebt doctor` again")
    print(f"{target.url}: ready ({len(checks)} checks)")
    return 0
