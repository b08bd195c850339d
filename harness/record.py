"""Run records: one `record.json` (schema 1 of DESIGN.md) per run, built from a fetched run folder.

The record is derived only from what the run wrote: `events.jsonl` (phases, epochs, Early-Bird draw,
accuracy, parameters), `power.csv` (the power trace, on the device clock) and `spec.json`. Energy is never
invented: without a trace it is null with `energy_source: none`.

A resumed run has several runner sessions (each begins with `run_start`). A phase's time is the part of
its span that falls inside a session, so the downtime between a crash and `ebt resume` is not billed; the
energy of a partial epoch lost in the crash stays, because its samples are in the trace.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np

from analysis.energy_estimate import estimate as estimate_energy
from experiments.events import read_events

log = logging.getLogger(__name__)

SCHEMA = 1


@dataclass(frozen=True)
class Session:
    start: float
    end: float


def _sessions(events: list[dict], sample_t: Any) -> list[Session]:
    """Runner sessions: each from its `run_start` to its last sign of life, the later of its last event
    and its last power sample before the next session (a crashed runner's last epoch leaves samples
    after its last event)."""
    starts = [i for i, e in enumerate(events) if e["event"] == "run_start"]
    out = []
    for n, i in enumerate(starts):
        j = starts[n + 1] if n + 1 < len(starts) else len(events)
        end = max(e["t"] for e in events[i:j])
        if sample_t is not None and len(sample_t):
            nxt = events[j]["t"] if j < len(events) else np.inf
            mine = sample_t[(sample_t >= events[i]["t"]) & (sample_t < nxt)]
            if len(mine):
                end = max(end, float(mine[-1]))
        out.append(Session(events[i]["t"], end))
    return out


def _phase_spans(events: list[dict]) -> list[dict]:
    """One entry per phase (in order): first start, final end, epochs, model."""
    phases: dict[int, dict] = {}
    for e in events:
        if e["event"] == "phase_start":
            p = phases.setdefault(e["index"], {"name": e["phase"], "start": e["t"], "end": None,
                                               "epochs": 0, "model": e.get("model")})
            p["model"] = e.get("model") or p["model"]
        elif e["event"] == "phase_end" and e["index"] in phases:
            p = phases[e["index"]]
            p.update(end=e["t"], epochs=e["epochs"], model=e.get("model") or p["model"], info=e.get("info"))
        elif e["event"] == "epoch":
            for p in phases.values():
                if p["name"] == e["phase"] and p["end"] is None:
                    p["epochs"] = max(p["epochs"], e["epoch"])
    return [phases[i] for i in sorted(phases)]


def _segments(start: float, end: float, sessions: list[Session]) -> list[tuple[float, float]]:
    segs = []
    for s in sessions:
        a, b = max(start, s.start), min(end, s.end)
        if b > a:
            segs.append((a, b))
    return segs


def _energy(trace: Any, segs: list[tuple[float, float]], idle_w: Optional[float]) -> dict[str, Any]:
    from hw.energy import integrate
    total = {"energy_j": 0.0, "net_energy_j": 0.0 if idle_w is not None else None, "samples": 0,
             "covered_s": 0.0, "gaps": []}
    for a, b in segs:
        r = integrate(trace, a, b, idle_w=idle_w)
        r = r._asdict() if hasattr(r, "_asdict") else dict(r)
        total["energy_j"] += r["energy_j"]
        if idle_w is not None:
            total["net_energy_j"] += r["net_energy_j"]
        total["samples"] += r["samples"]
        total["covered_s"] += r["coverage"] * (b - a)
        total["gaps"].extend(r.get("gaps") or [])
    return total


def git_info(root: Path) -> dict[str, Any]:
    def git(*args: str) -> Optional[str]:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "dirty": None if status is None else bool(status)}


def _flops(model: Optional[dict], samples: Optional[int], epochs: int, dataset: str) -> Optional[float]:
    if not model or not samples or not epochs:
        return 0.0 if epochs == 0 else None
    from analysis.flops import training_flops
    return training_flops(model, dataset, samples, epochs)


def build_record(run_dir: Path, meter: Optional[dict] = None, code_root: Optional[Path] = None,
                 target: str = "local") -> dict[str, Any]:
    """The record of the run folder `run_dir` (a fetched copy). `meter` overrides the meter block
    (e.g. a laptop-side meter: where, clock offset); `code_root` is the checkout for `code`."""
    run_dir = Path(run_dir)
    spec = json.loads((run_dir / "spec.json").read_text())
    events = read_events(run_dir / "events.jsonl")
    starts = [e for e in events if e["event"] == "run_start"]
    ends = [e for e in events if e["event"] == "run_end"]
    last_end = ends[-1] if ends else None
    first = starts[0] if starts else {}
    trace = None
    trace_path = run_dir / "power.csv"
    if trace_path.exists() and trace_path.stat().st_size > 0:
        from hw.trace import read_trace
        trace = read_trace(trace_path)
        if len(trace.t) == 0:
            trace = None
    meter_block = {"spec": spec.get("meter"), "kind": None, "where": spec.get("meter_where"),
                   "rate_hz": spec.get("meter_rate_hz"), "idle_w": None, "gaps": []}
    meter_block.update((first.get("meter") or {}))
    meter_block.update(meter or {})
    if spec.get("meter_idle_w") is not None:
        meter_block["idle_w"] = spec["meter_idle_w"]
    idle_w = meter_block.get("idle_w")
    sessions = _sessions(events, trace.t if trace is not None else None)
    samples_per_epoch = first.get("train_samples")

    phases = []
    for p in _phase_spans(events):
        end = p["end"] if p["end"] is not None else (sessions[-1].end if sessions else p["start"])
        segs = _segments(p["start"], end, sessions)
        seconds = sum(b - a for a, b in segs)
        info = p.get("info") or {}
        entry: dict[str, Any] = {"name": p["name"], "epochs": p["epochs"], "start": p["start"], "end": end,
                                 "seconds": seconds, "energy_j": None, "net_energy_j": None, "mean_w": None,
                                 "flops": _flops(p["model"], samples_per_epoch, p["epochs"], spec["dataset"]),
                                 "coverage": None, "samples": 0, "complete": p["end"] is not None,
                                 # why the FLOPs are what they are (dense for unstructured masks) and the
                                 # emulated precision of the phase (the energy estimate keys on it)
                                 "flops_note": info.get("flops_note"), "precision": info.get("precision")}
        if trace is not None and segs:
            e = _energy(trace, segs, idle_w)
            entry.update(energy_j=e["energy_j"], net_energy_j=e["net_energy_j"], samples=e["samples"],
                         coverage=e["covered_s"] / seconds if seconds > 0 else None,
                         mean_w=e["energy_j"] / seconds if seconds > 0 else None)
            meter_block["gaps"] = meter_block.get("gaps", []) + e["gaps"]
        phases.append(entry)

    measured = trace is not None and all(p["energy_j"] is not None for p in phases) and bool(phases)
    flops = [p["flops"] for p in phases]
    totals = {
        "seconds": sum(p["seconds"] for p in phases),
        "energy_j": sum(p["energy_j"] for p in phases) if measured else None,
        "net_energy_j": (sum(p["net_energy_j"] for p in phases)
                         if measured and idle_w is not None else None),
        "flops": sum(flops) if flops and all(f is not None for f in flops) else None,
        "energy_source": "measured" if measured else "none",
    }
    totals["estimated_energy_j"], totals["estimate_rule"] = estimate_energy(phases)

    if last_end is not None and last_end.get("status") == "ok":
        status = "ok"
    elif last_end is not None and last_end.get("status") == "failed":
        status = "failed"
    else:
        status = "partial"
    epochs = [e for e in events if e["event"] == "epoch"]
    done = last_end if status == "ok" else {}
    accuracy = done.get("accuracy") or {
        "top1": epochs[-1]["top1"] if epochs else None, "top5": epochs[-1]["top5"] if epochs else None,
        "best_top1": max((e["top1"] for e in epochs), default=None)}
    eb = done.get("eb")
    if eb is None:
        eb_events = [e for e in events if e["event"] == "eb_drawn" and e["ratio"] == spec["prune_ratio"]]
        eb = {"epoch": eb_events[0]["epoch"], "detected": True} if eb_events else None
    record = {
        "schema": SCHEMA, "run_id": spec["run_id"], "status": status,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": spec["method"], "arch": spec["arch"], "depth": spec["depth"], "dataset": spec["dataset"],
        "prune_ratio": spec["prune_ratio"], "seed": spec["seed"], "config": spec,
        "eb": eb,
        "params": done.get("params") or {"dense": first.get("params_dense"), "final": None},
        "channels": done.get("channels") or {"dense": first.get("channels_dense"), "final": None},
        "accuracy": accuracy, "phases": phases, "totals": totals, "meter": meter_block,
        "device": first.get("device"), "target": target,
        "code": git_info(code_root) if code_root else {"git_commit": None, "dirty": None},
        "resumed": any(e["event"] == "resume" for e in events),
        "error": (last_end or {}).get("error"),
    }
    return record


def write_record(record: dict[str, Any], dest_dir: Path) -> Path:
    """Write `record.json` atomically (temp file + rename)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / "record.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True, default=float))
    os.replace(tmp, path)
    return path
