"""Hand-made, clearly synthetic run records (schema 1) for the tests and the report benchmark.

Every record made here has run_id "synthetic-..." and device.host "synthetic": they exercise the
report's arithmetic and are never results.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

EPOCHS = 160


def record(method: str = "ebtrain-ff", arch: str = "vgg", depth: int = 16, dataset: str = "cifar10",
           prune_ratio: float = 0.5, seed: int = 1, top1: Optional[float] = 93.0, energy_j: Optional[float] = 2e5,
           estimated_energy_j: Optional[float] = None, flops: Optional[float] = 1e16, status: str = "ok",
           eb_draw_epoch: Optional[Any] = None, eb_epoch: Optional[int] = 20, lr: float = 0.1,
           lr_milestones: Sequence[float] = (0.5, 0.75), run_id: Optional[str] = None,
           phases: Optional[List[Dict[str, Any]]] = None, created: str = "2026-01-01T00:00:00Z") -> Dict[str, Any]:
    eb_method = method.startswith("ebtrain")
    source = "measured" if energy_j is not None else ("estimated" if estimated_energy_j is not None else "none")
    if phases is None:
        phases = [{"name": "search" if eb_method else "train", "epochs": EPOCHS, "start": 1000.0, "end": 1100.0,
                   "seconds": 100.0, "energy_j": energy_j, "mean_w": None if energy_j is None else energy_j / 100.0,
                   "flops": flops, "coverage": 1.0, "samples": 1000}]
    return {
        "schema": 1,
        "run_id": run_id or f"synthetic-{arch}{depth}-{dataset}-{method}-p{prune_ratio}-s{seed}-d{eb_draw_epoch}-lr{lr}",
        "status": status, "created": created, "method": method, "arch": arch, "depth": depth,
        "dataset": dataset, "prune_ratio": prune_ratio, "seed": seed,
        "config": {"epochs": EPOCHS, "eb_draw_epoch": eb_draw_epoch, "lr": lr, "lr_milestones": list(lr_milestones),
                   "eb_ratios": [prune_ratio] if eb_method else []},
        "eb": ({"epoch": eb_draw_epoch if eb_draw_epoch is not None else eb_epoch, "epsilon": 0.1, "queue": 5,
                "ratio": prune_ratio, "distances": [0.5, 0.2, 0.05], "detected": eb_draw_epoch is None}
               if eb_method else None),
        "params": {"dense": 1000, "final": int(1000 * (1 - prune_ratio))},
        "channels": {"dense": [64, 64], "final": [32, 32]},
        "accuracy": {"top1": top1, "top5": None if top1 is None else min(100.0, top1 + 5), "best_top1": top1},
        "phases": phases,
        "totals": {"seconds": 100.0, "energy_j": energy_j, "flops": flops, "energy_source": source,
                   "estimated_energy_j": estimated_energy_j,
                   "estimate_rule": "synthetic" if estimated_energy_j is not None else None},
        "meter": {"spec": "synthetic", "kind": "synthetic", "where": "device", "rate_hz": 10, "idle_w": 1.0, "gaps": []},
        "device": {"host": "synthetic", "board": None, "jetpack": None, "power_mode": None, "python": None,
                   "torch": None, "cuda": None},
        "code": {"git_commit": None, "dirty": False},
        "resumed": False,
    }


def write_run(root: Path, rec: Dict[str, Any], power: Optional[Iterable[Sequence[float]]] = None,
              masks: Optional[Dict[float, Dict[int, np.ndarray]]] = None,
              events: Optional[List[Dict[str, Any]]] = None) -> Path:
    """results/runs/<run_id>/ with record.json and, when given, power.csv, masks.jsonl, events.jsonl."""
    run_dir = Path(root) / rec["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "record.json").write_text(json.dumps(rec))
    if power is not None:
        (run_dir / "power.csv").write_text("t,watts\n" + "".join(f"{t},{w}\n" for t, w in power))
    if masks is not None:
        import torch
        from experiments.earlybird import save_mask  # the runner's own writer, so the format cannot drift

        with open(run_dir / "masks.jsonl", "w") as fh:
            for ratio, by_epoch in masks.items():
                for epoch, mask in by_epoch.items():
                    save_mask(fh, epoch, ratio, torch.as_tensor(np.asarray(mask, dtype=bool)))
    if events is not None:
        (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


def benchmark_set(root: Path, n: int = 1000, seed: int = 0) -> None:
    """`n` synthetic records spread over Table 2's settings, methods, ratios and seeds (a few partial)."""
    rng = np.random.default_rng(seed)
    settings = [("vgg", 16, "cifar10"), ("vgg", 16, "cifar100"), ("preresnet", 101, "cifar10"),
                ("preresnet", 101, "cifar100")]
    methods = ["dense", "lt", "snip", "ns", "thinet", "ebtrain-reinit", "ebtrain-ff", "ebtrain-lf", "ebtrain-ll"]
    for i in range(n):
        arch, depth, ds = settings[i % 4]
        method = methods[(i // 4) % len(methods)]
        p = 0.0 if method == "dense" else [0.3, 0.5, 0.7][(i // 36) % 3]
        draw = [10, 20, 40, 160, None][(i // 108) % 5] if method.startswith("ebtrain") else None
        low = method in ("ebtrain-lf", "ebtrain-ll")
        rec = record(method, arch, depth, ds, p, seed=i, top1=float(rng.normal(92, 0.5)),
                     energy_j=float(rng.normal(3e5, 1e4)), flops=float(rng.normal(1e16, 1e14)),
                     estimated_energy_j=float(rng.normal(6e4, 1e3)) if low else None, eb_draw_epoch=draw,
                     status="partial" if i % 97 == 0 else "ok", run_id=f"synthetic-{i:05d}")
        write_run(root, rec)
