"""`ebt plan CONFIG --target T`: estimated hours and kJ of every run of a config, and of the sweep."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .. import CODE_ROOT
from ..errors import UsageError
from ..targets import open_target
from . import options

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="estimate hours and kJ of a config's runs from a short calibration on the target",
                       description="Calibrate the target (a few training steps per model shape, synthetic batches, "
                                   "meter on), then print estimated hours and kJ per run and for the sweep; for "
                                   "Slurm also the wall time on N nodes.")
    p.add_argument("config", type=Path, nargs="+",
                   help="YAML config(s) (e.g. experiments/configs/table2/vgg16-cifar10.yaml); with several, also "
                        "their distinct runs together, as they would run into one results folder")
    options.target(p)
    options.meter(p, "power meter for the calibration")
    options.overrides(p)
    options.results(p)
    p.add_argument("--nodes", type=int, default=None,
                   help="nodes that run the sweep at once (default: a Slurm partition's node count, else 1)")
    p.add_argument("--budget", type=float, default=30.0, metavar="SECONDS",
                   help="time for the calibration's training steps, shared by the shapes (default 30)")
    p.add_argument("--dry-run", action="store_true",
                   help="use the calibrations kept under results/calibrations/ (no calibration on the target)")
    p.set_defaults(func=cmd_plan)


def _table(plans: list) -> str:
    header = ["run_id", "method", "epochs", "PFLOPs", "hours", "kJ", "EB epoch"]
    from ..plan import human

    rows = [[p.run_id, p.method, str(sum(ph.epochs for ph in p.phases)), human(p.pflops), human(p.hours),
             "null" if p.kj is None else human(p.kj), p.eb] for p in plans]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _nodes(args: argparse.Namespace, target) -> int:
    if args.nodes is not None:
        if args.nodes < 1:
            raise UsageError(f"--nodes {args.nodes}: give a node count of at least 1")
        return args.nodes
    count = getattr(target, "partition_nodes", None)
    return count() if count is not None and not args.dry_run else 1


def _calibrations(args: argparse.Namespace, target, shapes: list, meter: str) -> dict:
    from .. import plan as pl

    if args.dry_run:
        found = pl.cached(args.results, target.url, shapes)
        missing = [s.key for s in shapes if s not in found]
        if missing:
            configs = " ".join(str(c) for c in args.config)
            raise UsageError(f"--dry-run needs a calibration of {len(missing)} model shape(s) on {target.url} "
                             f"under {args.results}/{pl.CALIBRATIONS}, and there is none yet: make one with "
                             f"`ebt plan {configs} --target {args.target}` (a short calibration on the "
                             "target), then --dry-run reuses it")
        return found
    code_dir = target.prepare(CODE_ROOT)
    run = getattr(target, "run_on_node", target.run_module)  # Slurm: on a compute node, not the login node
    log.info("calibrating %d model shape(s) on %s (about %.0f s of training steps)", len(shapes), target.url,
             args.budget)
    return pl.calibrate(run, code_dir, target.url, shapes, meter, args.results, budget_s=args.budget)


def _sweep_line(label: str, specs: list, plans: list, nodes: int) -> str:
    """Board-hours and kJ of runs alone and with shared trunks, and the wall time alone on `nodes`."""
    from .. import plan as pl

    hours = [p.hours for p in plans]
    kj = None if any(p.kj is None for p in plans) else sum(p.kj for p in plans)
    saved = pl.shared_savings(specs, plans)
    alone, shared = sum(hours), sum(hours) - saved.hours
    energy = "kJ null (no meter)" if kj is None else f"{pl.human(kj)} kJ"
    if kj is not None and saved.kj is not None:
        energy += f" alone, {pl.human(kj - saved.kj)} kJ shared"
    return (f"{label}: {len(plans)} runs, {pl.human(alone)} board-hours alone, {pl.human(shared)} shared "
            f"({saved.trunks} trunk{'s' if saved.trunks != 1 else ''}, {shared / alone:.0%} of alone); {energy}; "
            f"wall time alone on {nodes} node{'s' if nodes != 1 else ''}: "
            f"{pl.human(pl.makespan_hours(hours, nodes))} h")


def cmd_plan(args: argparse.Namespace) -> int:
    from .. import plan as pl  # imports torch: only when planning
    from hw.meters import NONE

    from ..config import load_specs, parse_overrides

    sweeps = [(config, load_specs(config, parse_overrides(args.overrides), options.meters_given(args), args.target))
              for config in args.config]
    every = list({s["run_id"]: s for _, specs in sweeps for s in specs}.values())  # distinct runs
    meter = every[0]["meter"]
    if every[0]["meter_where"] == "laptop":
        log.warning("%s hangs off the laptop: the calibration runs without it, so kJ stay null", meter)
        meter = NONE
    target = open_target(args.target, trust_new_host=args.trust_new_host)
    try:
        calibrations = _calibrations(args, target, pl.shapes_for(every), meter)
        nodes = _nodes(args, target)
    finally:
        target.close()
    recorded = pl.recorded_eb_epochs(args.results)
    for config, specs in sweeps:
        plans = [pl.estimate(spec, calibrations, recorded) for spec in specs]
        print(_table(plans))
        print(_sweep_line(str(config), specs, plans, nodes))
    if len(sweeps) > 1:
        print(_sweep_line(f"all {len(sweeps)} configs", every,
                          [pl.estimate(spec, calibrations, recorded) for spec in every], nodes))
    print(f"estimated (not measured): EB ticket at eb_draw_epoch (fixed), else where ok records of the same search "
          f"drew it (records), else at {pl.EB_DRAW_FRACTION:.0%} of the schedule, not before eb_queue (assumed); "
          "pruned layers keep (1 - prune_ratio) of their channels; emulated 8-bit phases cost at least their "
          "FP32 time; time scales with each phase's FLOPs from the "
          "calibrated step; pruning steps and data loading not counted; energy = calibrated mean power x time; "
          "shared: runs whose first phase is the same train it once, as long as the longest of them needs")
    return 0
