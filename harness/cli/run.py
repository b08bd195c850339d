"""`ebt run CONFIG`: validate, freeze, launch on the target, follow, fetch and record every run of a config."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from experiments import events as ev
from experiments import paths

from .. import CODE_ROOT
from ..lifecycle import follow_and_finish, laptop_meter, launch, start_metered
from ..targets import open_target

log = logging.getLogger(__name__)


def meter_where(meter: str, target_url: str) -> str:
    """Serial meters hang off the laptop in an SSH setup; everything else is read where the run is."""
    if target_url in ("", "local"):
        return "device"
    from hw.meters import is_serial
    return "laptop" if is_serial(meter) else "device"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a config's experiments on a target and record them",
                       description="Run every experiment of a YAML config (one per combination of its "
                                   "`sweep:`) on the target, following progress live, then fetch the run "
                                   "folder and write results/runs/<run_id>/record.json.")
    p.add_argument("config", type=Path, help="YAML config (e.g. experiments/configs/quickstart.yaml)")
    p.add_argument("--target", default="local", help="local (default) or ssh://[user@]host[:port]")
    p.add_argument("--meter", default=None, help="power meter spec (auto, none, jtop, ina3221, nvml, "
                                                 "rapl, wattsup:PORT, ...); default: the config's")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--trust-new-host", action="store_true",
                   help="accept and record an SSH host key not yet in known_hosts")
    p.add_argument("--checkpoints", action="store_true", help="also fetch checkpoints and tickets")
    p.add_argument("--dry-run", action="store_true", help="print the resolved specs and stop")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from ..config import load_specs, parse_overrides  # imports torch: only when running
    overrides = parse_overrides(args.overrides)
    if args.meter is not None:
        overrides["meter"] = args.meter
    specs = load_specs(args.config, overrides)
    for spec in specs:
        spec["meter_where"] = meter_where(spec["meter"], args.target)
    if args.dry_run:
        import json
        print(json.dumps(specs, indent=1, sort_keys=True))
        return 0
    target = open_target(args.target, trust_new_host=args.trust_new_host)
    failures = 0
    try:
        for spec in specs:
            laptop = laptop_meter(spec["meter"], spec["meter_where"], spec["meter_rate_hz"], target,
                                  args.results, spec["run_id"])
            info = start_metered(laptop, lambda: launch(spec, target, args.results, CODE_ROOT))
            state = follow_and_finish(info, target, args.results, CODE_ROOT, args.checkpoints, laptop)
            if state != ev.OK:
                failures += 1
                tail = target.read_from(paths.runner_log(info.run_dir), 0).decode(errors="replace")
                log.error("%s ended %s; last lines of %s:\n%s", info.run_id, state,
                          paths.runner_log(info.run_dir), "\n".join(tail.splitlines()[-15:]))
    finally:
        target.close()
    return 1 if failures else 0
