#!/usr/bin/env python3
"""What shared trunks save on the paper's CIFAR configs: the share of their board-hours alone.

Each config is laid out by `ebt plan`'s own rules (`harness.plan`: phases, epochs, the ticket's epoch at
`eb_draw_epoch` or 15% of the schedule, pruned widths) with time proportional to each phase's FLOPs (one
calibration for every shape, so no board is needed), then priced alone and with shared trunks
(`harness.plan.shared_savings`). The README's "shared" column is its "alone" column times this share.
Goals: all CIFAR configs together at <= 60% of alone, Fig 1 + Fig 5 at <= 50% (the exit status says).

    python3 benchmarks/shared_hours.py
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import plan as pl  # noqa: E402
from harness.config import load_specs  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
PAPER = ["table1.yaml", "table2/vgg16-cifar10.yaml", "table2/vgg16-cifar100.yaml",
         "table2/preresnet101-cifar10.yaml", "table2/preresnet101-cifar100.yaml", "table4.yaml",
         "fig1-fig5.yaml", "fig2.yaml", "fig3.yaml"]
GOALS = {"fig1-fig5.yaml": 0.50, "all CIFAR configs": 0.60}
# one step time for every shape: time then follows each phase's FLOPs alone
UNIT = {"train_step_s": 1.0, "eval_step_s": 0.3, "checkpoint_s": 0.0, "mean_w": None, "startup_s": 0.0}


def share(specs):
    """(runs, hours alone, hours shared) of `specs` in FLOPs-proportional hours."""
    cal = {shape: UNIT for shape in pl.shapes_for(specs)}
    plans = [pl.estimate(spec, cal) for spec in specs]
    alone = sum(p.hours for p in plans)
    return len(plans), alone, alone - pl.shared_savings(specs, plans).hours


def main():
    every, ok = {}, True
    print("%-36s %5s %8s" % ("config", "runs", "shared"))
    for name in PAPER:
        specs = load_specs(CONFIGS / name, {})
        every.update((s["run_id"], s) for s in specs)
        runs, alone, shared = share(specs)
        print("%-36s %5d %7.0f%%" % (name, runs, 100 * shared / alone))
        ok &= shared / alone <= GOALS.get(name, 1.0)
    runs, alone, shared = share(list(every.values()))
    print("%-36s %5d %7.0f%%" % ("all CIFAR configs", runs, 100 * shared / alone))
    ok &= shared / alone <= GOALS["all CIFAR configs"]
    print("goals (Fig 1+5 <= 50%%, all <= 60%%): %s" % ("met" if ok else "NOT met"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
