"""Run folders as the runner writes them, turned into records by the real record builder.

For the analysis tests and the report benchmark: `make_run` writes `spec.json` (a resolved spec),
`events.jsonl` (through `experiments.events.EventLog`, with the runner's events and fields) and, when a
power level is given, `power.csv` (through `hw.trace`'s writer, one sample a second at constant power),
then calls `harness.record.build_record` and `write_record`. So every record here is one the producer
can write; a record it cannot write fails here instead of passing a test.

Time is laid out as `EPOCH_S` seconds per epoch (1 s for a phase without epochs), phases back to back.
Every run id starts with "synthetic-": none of these is a result.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments import events as ev
from experiments import paths
from experiments.events import EventLog
from experiments.datasets import DATASETS
from experiments.models import default_cfg
from experiments.spec import resolve
from harness.record import build_record, write_record
from hw import trace as tr
from hw.meters.base import Sample

EPOCHS = 160
EPOCH_S = 1.0
T0 = 1_700_000_000.0


def _plan(spec: dict, draw: int) -> list[tuple[str, int, dict]]:
    """(phase name, epochs, phase_end info) of the registered method's phases: a search runs to the
    draw epoch, a retrain after a search from there to the budget, any other training phase the budget."""
    from experiments.methods import METHODS
    from experiments.phases import FLOPS_NOTES, Train

    plan: list[tuple[str, int, dict]] = []
    for p in METHODS[spec["method"]].phases():
        n = 0
        if isinstance(p, Train):
            searched = any(name == "search" for name, _, _ in plan)
            n = draw if p.name == "search" else spec["epochs"] - draw if searched else spec["epochs"]
        info = {"precision": p.precision(spec), "flops_rule": p.flops_rule, "flops_note": FLOPS_NOTES[p.flops_rule]}
        plan.append((p.name, n, info))
    return plan


def _model(arch: str, depth: int, dataset: str) -> dict[str, Any]:
    cfg = default_cfg(arch, depth)  # what `experiments.models.build` gives the dense model, without building it
    return {"arch": arch, "depth": depth, "num_classes": DATASETS[dataset].classes, "cfg": list(cfg)}


def make_run(root: Path, method: str = "ebtrain-ff", arch: str = "vgg", depth: int = 16, dataset: str = "cifar10",
             prune_ratio: float = 0.5, seed: int = 1, best_top1: float | None = 93.0,
             final_top1: float | None = None, energy_j: float | None = 2e5, status: str = ev.OK,
             eb_draw_epoch: int | str | None = None, eb_epoch: int = 20, detected: bool = True,
             eb_extra: dict | None = None, lr: float = 0.1, lr_milestones: Sequence[float] = (0.5, 0.75),
             epochs: int = EPOCHS, run_id: str | None = None, flops: bool = True,
             masks: dict | None = None, eb_events: Sequence[tuple[float, int]] = (), scope: str = "module",
             wall_w_extra: float | None = None, **spec_extra: Any) -> Path:
    """One run folder with its record.json; `energy_j` None: no meter, no trace. `wall_w_extra`: a second
    meter (scope wall) reading that many watts above the primary. `spec_extra`: more spec keys."""
    extra = hashlib.sha1(json.dumps([spec_extra, eb_extra, epochs], sort_keys=True).encode()).hexdigest()[:6]
    run_id = run_id or (f"synthetic-{arch}{depth}-{dataset}-{method}-p{prune_ratio}-s{seed}"
                        f"-d{eb_draw_epoch}-lr{lr}-m{'_'.join(map(str, lr_milestones))}-{extra}")
    run_dir = Path(root) / run_id
    run_dir.mkdir(parents=True)
    spec = resolve({"run_id": run_id, "method": method, "arch": arch, "depth": depth, "dataset": dataset,
                    "prune_ratio": prune_ratio, "seed": seed, "epochs": epochs, "lr": lr,
                    "lr_milestones": list(lr_milestones), "eb_draw_epoch": eb_draw_epoch,
                    "eb_ratios": [prune_ratio] if prune_ratio > 0 else [0.5],
                    "meter": "none" if energy_j is None else "synthetic",
                    **({"meters_extra": ["synthetic-wall"]} if wall_w_extra is not None else {}), **spec_extra})
    Path(paths.spec(run_dir)).write_text(json.dumps(spec))
    draw = eb_draw_epoch if isinstance(eb_draw_epoch, int) else eb_epoch  # detected, or at the best epoch
    plan = _plan(spec, draw)
    model = _model(arch, depth, dataset) if flops else None
    end_t = _events(run_dir, spec, plan, model, status, eb_events, scope,
                    _run_end(status, best_top1, final_top1, prune_ratio, draw, detected, eb_draw_epoch, eb_extra))
    if energy_j is not None:
        watts = energy_j / (end_t - T0)
        _power(paths.power_csv(run_dir), T0, end_t, watts)
        # A declared 1% class (a good analyser's): the synthetic run passes the validity rules unless a test
        # breaks one on purpose.
        tr.write_meta(paths.power_csv(run_dir), {"meter": {"spec": "synthetic", "kind": "synthetic",
                                                            "where": "device", "scope": scope,
                                                            "accuracy_rel": 0.01}})
        if wall_w_extra is not None:
            second = paths.secondary_power_csv(run_dir, 1)
            _power(second, T0, end_t, watts + wall_w_extra)
            tr.write_meta(second, {"meter": {"spec": "synthetic-wall", "kind": "synthetic", "where": "laptop",
                                             "scope": "wall"}})
    if masks is not None:
        _masks(run_dir, masks)
    write_record(build_record(run_dir), run_dir)
    return run_dir


def _run_end(status, best, final, ratio, draw, detected, fixed, extra) -> dict[str, Any]:
    if status != ev.OK:
        return {"status": status, "error": None if status == ev.STOPPED else "RuntimeError: synthetic failure"}
    final = best if final is None else final
    eb = {"ratio": ratio, "epsilon": 0.1, "queue": 5, "rule": "fifo", "detected": detected,
          "forced": fixed is not None, "epoch": draw, "distances": [0.5, 0.2, 0.05]}
    eb.update(extra or {})
    return {"status": ev.OK, "error": None, "sampler": None,
            "accuracy": {"top1": final, "top5": None if final is None else min(100.0, final + 5), "best_top1": best},
            "params": {"dense": 1000, "final": int(1000 * (1 - ratio)), "nonzero": int(1000 * (1 - ratio))},
            "channels": {"dense": [64, 64], "final": [32, 32]}, "eb": eb}


def _events(run_dir: Path, spec: dict, plan, model, status: str, eb_events, scope: str, end: dict) -> float:
    """events.jsonl for the plan; a partial run stops after its first phase. Returns the last event's time."""
    log = EventLog(paths.events(run_dir))
    t = T0
    log.emit(ev.RUN_START, t=t, run_id=spec["run_id"], method=spec["method"], resumed=False, pid=1,
             device={"board": None, "host": "synthetic"},
             meter={"spec": spec["meter"], "kind": None if spec["meter"] == "none" else "synthetic",
                    "where": "device", "scope": scope},
             params_dense=1000, channels_dense=[64, 64], train_samples=DATASETS[spec["dataset"]].train,
             phases=[p[0] for p in plan])
    for index, (name, n, info) in enumerate(plan):
        log.emit(ev.PHASE_START, t=t, phase=name, index=index, epochs=n, done=0, model=model)
        t += max(n, 1) * EPOCH_S
        for ratio, epoch in eb_events if name == "search" else ():
            log.emit(ev.EB_DRAWN, t=t, ratio=ratio, epoch=epoch, ticket="tickets/eb.pt")
        if n:
            log.emit(ev.EPOCH, t=t, phase=name, epoch=n, epochs=n, global_epoch=n, loss=1.0,
                     top1=end.get("accuracy", {}).get("top1") or 50.0, top5=None, lr=0.1)
        log.emit(ev.PHASE_END, t=t, phase=name, index=index, epochs=n, model=model, info=info)
        if status == ev.PARTIAL:
            break
    if status != ev.PARTIAL:
        log.emit(ev.RUN_END, t=t, **end)
    log.close()
    return t


def _power(path: str, t0: float, t1: float, watts: float) -> None:
    columns = tr.header([], False)
    with tr.open_for_append(path, columns) as fh:
        for t in np.arange(t0 - 1.0, t1 + 1.5, 1.0):
            fh.write(tr.format_row(Sample(t, watts), [], False))


def _masks(run_dir: Path, masks: dict[float, dict[int, Any]]) -> None:
    import torch

    from experiments.earlybird import (
        save_mask,  # the runner's own writer, so the format cannot drift
    )

    with open(paths.masks(run_dir), "w") as fh:
        for ratio, by_epoch in masks.items():
            for epoch, mask in by_epoch.items():
                save_mask(fh, epoch, ratio, torch.as_tensor(np.asarray(mask, dtype=bool)))


def benchmark_set(root: Path, n: int = 1000, seed: int = 0) -> None:
    """`n` runs spread over Table 2's settings, methods, ratios, draw epochs and seeds (a few partial), each
    with its power trace, and every Early-Bird search with its mask log up to its draw, as real runs have."""
    from analysis.naming import eb_keys
    from experiments.methods import METHODS

    rng = np.random.default_rng(seed)
    settings = [("vgg", 16, "cifar10"), ("vgg", 16, "cifar100"), ("preresnet", 101, "cifar10"),
                ("preresnet", 101, "cifar100")]
    methods = sorted(METHODS)
    eb = eb_keys()
    for i in range(n):
        arch, depth, ds = settings[i % 4]
        method = methods[(i // 4) % len(methods)]
        p = 0.0 if not METHODS[method].needs_ratio else [0.3, 0.5, 0.7][(i // 36) % 3]
        draw = [10, 20, 40, None][(i // 108) % 4] if method in eb else None
        masks = _search_masks(rng, arch, depth, p, draw or 20) if method in eb else None
        make_run(root, method, arch, depth, ds, p, seed=i, best_top1=float(rng.normal(92, 0.5)),
                 energy_j=float(rng.normal(3e5, 1e4)), eb_draw_epoch=draw, masks=masks,
                 status=ev.PARTIAL if i % 97 == 0 else ev.OK, run_id=f"synthetic-{i:05d}")


def _search_masks(rng, arch: str, depth: int, ratio: float, epochs: int) -> dict:
    """A search's channel masks at `ratio` for epochs 1..`epochs` over the model's BN channels, settling as
    the search goes on (fewer channels change each epoch), as the Early-Bird detector sees them."""
    channels = sum(v for v in default_cfg(arch, depth) if v != "M")
    mask = rng.random(channels) >= ratio
    by_epoch = {}
    for epoch in range(1, epochs + 1):
        flip = rng.random(channels) < 0.3 / epoch
        mask = mask ^ flip
        by_epoch[epoch] = mask.copy()
    return {ratio: by_epoch}
