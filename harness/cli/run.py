"""`ebt run CONFIG`: validate, freeze, launch on the target, follow, fetch and record every run of a config."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import UsageError
from ..targets import open_target
from . import options

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a config's experiments on a target and record them",
                       description="Run every experiment of a YAML config (one per combination of its "
                                   "`sweep:`) on the target, following progress live, then fetch the run "
                                   "folder and write results/runs/<run_id>/record.json.")
    p.add_argument("config", type=Path, help="YAML config (e.g. experiments/configs/quickstart.yaml)")
    options.target(p)
    options.meter(p, "power meter", several=True)
    options.overrides(p)
    options.results(p)
    p.add_argument("--checkpoints", action="store_true", help="also fetch checkpoints and tickets")
    p.add_argument("--dry-run", action="store_true",
                   help="list every run (id, method, the keys that differ, what would happen) and stop")
    p.add_argument("--force", action="store_true",
                   help="rerun every run from scratch, even those with an ok record")
    p.add_argument("--no-share", dest="share", action="store_false",
                   help="run every run alone: no shared trunk trains the first phase that runs have in common "
                        "(results are the same either way)")
    p.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from .. import (
        CODE_ROOT,
        sweep,  # both import torch: only when running
    )
    from ..config import load_specs, parse_overrides
    from ..preflight import before_run
    specs = load_specs(args.config, parse_overrides(args.overrides), options.meters_given(args), args.target,
                       args.results)
    from analysis.agreement import AgreementError, check_specs
    try:
        check_specs(args.results, specs)  # a correction that cannot apply fails before any run folder
    except AgreementError as err:
        raise UsageError(f"meter_calibration: {err}") from err
    planned = sweep.plan(specs, args.results, force=args.force)
    if args.dry_run:
        print(sweep.table(planned))
        print(f"{args.config}: {sweep.summary(planned)}; dry run, nothing started")
        return 0
    if all(p.action == sweep.SKIP for p in planned):
        print(f"{args.config}: nothing to do: all {len(planned)} runs have ok records (--force reruns them)")
        return 0
    log.info("%s: %s", args.config, sweep.summary(planned))
    target = open_target(args.target, trust_new_host=args.trust_new_host)
    try:
        before_run(target, [p.spec for p in planned if p.action != sweep.SKIP], CODE_ROOT)
        failures = sweep.execute(planned, target, args.results, args.checkpoints, share=args.share)
    finally:
        target.close()
    return 1 if failures else 0
