"""`ebt run CONFIG...`: validate, freeze, launch on the target, follow, fetch and record every run of the
configs, as one sweep (a run two configs share runs once; their trunks are shared across them)."""
from __future__ import annotations

import argparse
import logging
import shlex
from pathlib import Path

from experiments import events as ev
from experiments import paths

from ..errors import UsageError
from ..targets import Target, open_target
from . import options

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run a config's experiments on a target and record them",
                       description="Run every experiment of a YAML config (one per combination of its "
                                   "`sweep:`) on the target, following progress live, then fetch the run "
                                   "folder and write results/runs/<run_id>/record.json.")
    p.add_argument("config", type=Path, nargs="+",
                   help="YAML config (e.g. experiments/configs/quickstart.yaml); several run as one sweep: a run "
                        "they share runs once, and runs that begin alike share their trunk across them")
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
    from ..config import load_specs, parse_overrides
    overrides = parse_overrides(args.overrides)
    every = [s for config in args.config
             for s in load_specs(config, overrides, options.meters_given(args), args.target, args.results)]
    specs = list({s["run_id"]: s for s in every}.values())  # a run two configs share, once
    from analysis.agreement import AgreementError, check_specs
    try:
        check_specs(args.results, specs)  # a correction that cannot apply fails before any run folder
    except AgreementError as err:
        raise UsageError(f"meter_calibration: {err}") from err
    target = open_target(args.target, trust_new_host=args.trust_new_host)
    try:
        return _plan_and_run(args, specs, target)
    finally:
        target.close()


def _plan_and_run(args: argparse.Namespace, specs: list[dict], target: Target) -> int:
    from .. import CODE_ROOT, sweep  # sweep imports torch: only when running
    from ..board import Here, target_board
    from ..preflight import before_run
    here = Here(target.url, target_board(target, CODE_ROOT))
    planned = sweep.plan(specs, args.results, force=args.force, here=here)
    if args.dry_run:
        print(sweep.table(planned))
        for p in planned:
            if p.note:
                print(p.note)
        print(f"{_named(args)} on {here.describe()}: {sweep.summary(planned)}; dry run, nothing started")
        return 0
    if all(p.action == sweep.SKIP for p in planned):
        print(f"{_named(args)}: nothing to do: all {len(planned)} runs have ok records (--force reruns them)")
        return 0
    log.info("%s: %s", _named(args), sweep.summary(planned))
    try:
        before_run(target, [p.spec for p in planned if p.action not in (sweep.SKIP, sweep.OTHER_BOARD)],
                   CODE_ROOT)
        failures = sweep.execute(planned, target, args.results, args.checkpoints, share=args.share)
    except KeyboardInterrupt:
        log.error("%s", interrupted_line(args, [p.run_id for p in planned]))
        return 130
    return 1 if failures else 0


def rerun_command(args: argparse.Namespace) -> str:
    """The `ebt run` command line that continues this sweep (same config, target, meters and --set)."""
    words = ["ebt", "run", *(str(c) for c in args.config)]
    if args.target not in ("", "local"):
        words += ["--target", args.target]
    for given in args.meter or []:
        words += ["--meter", given]
    for given in args.overrides:
        words += ["--set", given]
    if Path(args.results) != Path(paths.RESULTS):
        words += ["--results", str(args.results)]
    return " ".join(shlex.quote(w) for w in words) + (" --checkpoints" if args.checkpoints else "")


def interrupted_line(args: argparse.Namespace, run_ids: list[str]) -> str:
    """After Ctrl-C, one line: what goes on (a runner is detached: it does not stop with ebt), how to stop
    it and how to continue the sweep."""
    from ..lifecycle import RunInfo
    going = [RunInfo.load(args.results, r) for r in run_ids if RunInfo.path(args.results, r).exists()]
    going = [i for i in going if i.state in (ev.RUNNING, ev.PENDING)]
    rerun = rerun_command(args)
    if not going:
        return f"interrupted; nothing was left running. Continue the sweep: `{rerun}`"
    if len(going) == 1:
        what, stop = f"{going[0].run_id} goes on on {going[0].target} (pid {going[0].pid})", [going[0].run_id]
        if Path(args.results) != Path(paths.RESULTS):
            stop[0] += " --results " + shlex.quote(str(args.results))
    else:
        what = f"{len(going)} runs go on on {going[0].target}"
        stop = [_cancel_sweep(args, c) for c in args.config]
    stops = ", ".join(f"`ebt cancel {s}`" for s in stop)
    return f"interrupted; {what}. Stop it: {stops}; continue the sweep: `{rerun}`"


def _cancel_sweep(args: argparse.Namespace, config: Path) -> str:
    """`ebt cancel`'s arguments for one config's runs (the same --set and results folder)."""
    words = [str(config)] + [x for o in args.overrides for x in ("--set", o)]
    if Path(args.results) != Path(paths.RESULTS):
        words += ["--results", str(args.results)]
    return " ".join(shlex.quote(w) for w in words)


def _named(args: argparse.Namespace) -> str:
    return " + ".join(str(c) for c in args.config)
