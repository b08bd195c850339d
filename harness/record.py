"""Run records: one `record.json` per run, built from a fetched run folder. Its structure and version
are `analysis.schema`'s (explained field by field in docs/record.md); every record is validated
against it before it is written.

The record is derived only from what the run wrote: `events.jsonl` (phases, epochs, Early-Bird draw,
accuracy, parameters), the power traces (on the device clock) and `spec.json`. Energy is never
invented: without a trace it is null with `energy_source: none`. Energy follows `hw.energy`'s rule: a
stretch without samples longer than a few sample periods is left out, not bridged, and shows as
`uncovered_s`; every phase energy and total carries `energy_uncertainty_j` (instrument class,
sampling, gaps, clock alignment) and the `scope` of its meter. The primary meter (`power.csv`) gives
`phases` and `totals`; each secondary meter (`power-N.csv`) gets its own per-phase energies in
`secondary_meters`, never mixed into the primary's.

Every phase and `totals` carry `validity` (`hw.energy.validity`, thresholds from the spec's `validity_*`
keys): whether the energy meets the sampling, coverage and uncertainty rules, and the reasons when not;
null when nothing was measured. A spec naming `meter_calibration` (a stored `ebt meters agree` result under
`results/calibrations/`, `analysis.agreement`) has the primary meter's energies multiplied by its ratio,
the ratio's uncertainty added, and `energy_correction` naming it in every phase and the totals.

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
from typing import Any

import numpy as np

from analysis import agreement
from analysis.energy_estimate import estimate as estimate_energy
from analysis.energy_estimate import estimates as all_estimates
from experiments import events as ev
from experiments import paths
from analysis.schema import SCHEMA, validate
from harness.conditions import conditions_block
from hw.energy import accuracy_of, integrate, validity, validity_rules
from hw.fileio import atomic_write_json
from hw.trace import read_meta, read_trace

log = logging.getLogger(__name__)

# The meter entry's fields taken from the meter's own description (power.meta.json, run_start, laptop)
METER_INFO = ("spec", "kind", "where", "scope", "rate_hz", "max_w", "update_period_s", "counter",
              "provenance", "sampling")


@dataclass(frozen=True)
class Session:
    start: float
    end: float


@dataclass(frozen=True)
class Window:
    """One phase's active time: its span cut to the runner sessions."""
    name: str
    start: float
    end: float
    segments: list[tuple[float, float]]
    complete: bool
    epochs: int
    model: dict | None
    info: dict

    @property
    def seconds(self) -> float:
        return sum(b - a for a, b in self.segments)


@dataclass(frozen=True)
class RunFolder:
    """What the run wrote, loaded once."""
    path: Path
    spec: dict[str, Any]
    events: list[dict]
    first: dict[str, Any]  # the first run_start
    trace: Any  # the primary meter's hw.trace.Trace, None without samples
    sessions: list[Session]


def _trace_or_none(path: str) -> Any:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    trace = read_trace(path)
    return trace if len(trace.t) else None


def load_run(run_dir: Path) -> RunFolder:
    run_dir = Path(run_dir)
    spec = json.loads(Path(paths.spec(run_dir)).read_text())
    events = ev.read_events(paths.events(run_dir))
    trace = _trace_or_none(paths.power_csv(run_dir))
    first = next((e for e in events if e["event"] == ev.RUN_START), {})
    return RunFolder(run_dir, spec, events, first, trace,
                     _sessions(events, trace.t if trace is not None else None))


def _sessions(events: list[dict], sample_t: Any) -> list[Session]:
    """Runner sessions: each from its `run_start` to its last sign of life, the later of its last event
    and its last power sample before the next session (a crashed runner's last epoch leaves samples
    after its last event)."""
    starts = [i for i, e in enumerate(events) if e["event"] == ev.RUN_START]
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
        if e["event"] == ev.PHASE_START:
            p = phases.setdefault(e["index"], {"name": e["phase"], "start": e["t"], "end": None,
                                               "epochs": 0, "model": e.get("model")})
            p["model"] = e.get("model") or p["model"]
        elif e["event"] == ev.PHASE_END and e["index"] in phases:
            p = phases[e["index"]]
            p.update(end=e["t"], epochs=e["epochs"], model=e.get("model") or p["model"], info=e.get("info"))
        elif e["event"] == ev.EPOCH:
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


def windows(run: RunFolder) -> list[Window]:
    out = []
    for p in _phase_spans(run.events):
        # an unfinished phase lasts as long as the last session shows life
        end = p["end"] if p["end"] is not None else (run.sessions[-1].end if run.sessions else p["start"])
        out.append(Window(p["name"], p["start"], end, _segments(p["start"], end, run.sessions),
                          p["end"] is not None, p["epochs"], p["model"], p.get("info") or {}))
    return out


def window_energy(trace: Any, segments: list[tuple[float, float]], meter: dict[str, Any],
                  idle_w: float | None = None, clock_s: float = 0.0) -> dict[str, Any]:
    """`hw.energy.integrate` summed over a window's segments; uncertainties add (worst case)."""
    out: dict[str, Any] = {"energy_j": 0.0, "energy_uncertainty_j": 0.0, "samples": 0, "covered_s": 0.0,
                           "uncovered_s": 0.0, "gaps": [],
                           "net_energy_j": 0.0 if idle_w is not None else None}
    for a, b in segments:
        r = integrate(trace, a, b, idle_w=idle_w, meter=meter, clock_s=clock_s)
        out["energy_j"] += r.energy_j
        out["energy_uncertainty_j"] += r.uncertainty_j
        if idle_w is not None:
            out["net_energy_j"] += r.net_energy_j
        out["samples"] += r.samples
        out["covered_s"] += r.covered_s
        out["uncovered_s"] += r.uncovered_s
        out["gaps"].extend(r.gaps)
    seconds = out["covered_s"] + out["uncovered_s"]
    out["coverage"] = out["covered_s"] / seconds if seconds > 0 else None
    out["mean_w"] = out["energy_j"] / out["covered_s"] if out["covered_s"] > 0 else None
    return out


def _clock_s(info: dict[str, Any]) -> float:
    """The residual clock uncertainty of a trace moved from the laptop's clock (0 on the device)."""
    return float(((info.get("clock") or {}).get("uncertainty_s")) or 0.0)


def _merged_info(run: RunFolder, meta: dict | None, override: dict | None) -> dict[str, Any]:
    """The meter's description: the spec, then the runner's `run_start`, the trace meta, the laptop's."""
    info: dict[str, Any] = {"spec": run.spec.get("meter"), "where": run.spec.get("meter_where"),
                            "rate_hz": run.spec.get("meter_rate_hz")}
    for source in (run.first.get("meter"), (meta or {}).get("meter"), override):
        info.update({k: v for k, v in (source or {}).items() if v is not None})
    return info


def meter_block(run: RunFolder, override: dict | None = None) -> dict[str, Any]:
    """The record's `meter`: the primary meter, its accuracy class, idle baseline and sampling stats."""
    meta = read_meta(paths.power_csv(run.path)) or {}
    info = _merged_info(run, meta, override)
    last = (meta.get("sessions") or [{}])[-1]
    rel, abs_w, source = accuracy_of(info)
    block = {k: info.get(k) for k in METER_INFO}
    block.update(
        accuracy={"rel": rel, "abs_w": abs_w, "source": source},
        idle_w=run.spec.get("meter_idle_w"), idle_std_w=run.spec.get("meter_idle_std_w"),
        achieved_hz=last.get("achieved_hz"), gap_s=last.get("gap_s"), gaps=[],
        samples=info.get("samples", meta.get("samples")), malformed=meta.get("malformed"),
        reconnects=meta.get("reconnects"), spikes=meta.get("spikes"), correction=None)
    for optional in ("notes", "clock"):
        if info.get(optional) is not None:
            block[optional] = info[optional]
    return block


def _flops(model: dict | None, samples: int | None, epochs: int, dataset: str) -> float | None:
    if not model or not samples or not epochs:
        return 0.0 if epochs == 0 else None
    from analysis.flops import training_flops
    return training_flops(model, dataset, samples, epochs)


def phase_entry(w: Window, run: RunFolder, meter: dict[str, Any]) -> dict[str, Any]:
    """One `phases[]` entry; adds the phase's uncovered stretches to `meter['gaps']`."""
    entry: dict[str, Any] = {
        "name": w.name, "epochs": w.epochs, "start": w.start, "end": w.end, "seconds": w.seconds,
        "complete": w.complete, "samples": 0, "energy_j": None, "energy_uncertainty_j": None,
        "net_energy_j": None, "mean_w": None, "scope": None, "coverage": None, "uncovered_s": None,
        "flops": _flops(w.model, run.first.get("train_samples"), w.epochs, run.spec["dataset"]),
        # why the FLOPs are what they are (dense for unstructured masks), and the emulated precision
        # the energy estimate keys on
        "flops_note": w.info.get("flops_note"), "precision": w.info.get("precision"),
        "validity": {"valid": None, "reasons": []}, "energy_correction": None}
    if run.trace is None or not w.segments:
        return entry
    accuracy = {"accuracy_rel": meter["accuracy"]["rel"], "accuracy_abs_w": meter["accuracy"]["abs_w"],
                "accuracy_source": meter["accuracy"]["source"], "update_period_s": meter["update_period_s"],
                "sampling": meter.get("sampling")}
    e = _corrected(window_energy(run.trace, w.segments, accuracy, meter["idle_w"], _clock_s(meter)),
                   meter["correction"])
    entry.update({k: e[k] for k in ("energy_j", "energy_uncertainty_j", "net_energy_j", "mean_w",
                                    "coverage", "uncovered_s", "samples")}, scope=meter["scope"])
    entry["validity"] = validity(e["samples"], w.seconds, e["coverage"], e["energy_j"], e["energy_uncertainty_j"],
                                 validity_rules(run.spec))
    entry["energy_correction"] = (meter["correction"] or {}).get("calibration")
    meter["gaps"].extend(e["gaps"])
    return entry


def _corrected(e: dict[str, Any], correction: dict[str, Any] | None) -> dict[str, Any]:
    """A window's figures on the reference meter's scale: x ratio, the ratio's own uncertainty added."""
    if not correction:
        return e
    ratio, u = correction["ratio"], correction["ratio_uncertainty"]
    out = dict(e)
    for key in ("energy_j", "net_energy_j", "mean_w"):
        out[key] = None if e[key] is None else e[key] * ratio
    out["energy_uncertainty_j"] = e["energy_uncertainty_j"] * ratio + abs(e["energy_j"]) * u
    return out


def _correction(run: RunFolder) -> dict[str, Any] | None:
    """The stored agreement the spec names, checked against the primary meter (results/calibrations/)."""
    name = run.spec.get("meter_calibration")
    if not name:
        return None
    results = Path(run.path).resolve().parent.parent
    return agreement.correction(agreement.load(results, name), run.spec.get("meter"))


def _sum(values: list[Any]) -> float | None:
    return sum(values) if values and all(v is not None for v in values) else None


def totals(phases: list[dict], meter: dict[str, Any], measured: bool,
           rules: dict[str, Any] | None = None) -> dict[str, Any]:
    seconds = sum(p["seconds"] for p in phases)
    uncovered = _sum([p["uncovered_s"] for p in phases]) if measured else None
    out = {
        "seconds": seconds,
        "energy_j": _sum([p["energy_j"] for p in phases]) if measured else None,
        "energy_uncertainty_j": _sum([p["energy_uncertainty_j"] for p in phases]) if measured else None,
        "net_energy_j": _sum([p["net_energy_j"] for p in phases]) if measured else None,
        "scope": meter["scope"] if measured else None,
        "coverage": (1.0 - uncovered / seconds) if uncovered is not None and seconds > 0 else None,
        "uncovered_s": uncovered,
        "flops": _sum([p["flops"] for p in phases]),
        "energy_source": "measured" if measured else "none",
        "energy_correction": (meter["correction"] or {}).get("calibration") if measured else None,
    }
    samples = sum(p["samples"] for p in phases)
    out["validity"] = validity(samples, seconds, out["coverage"], out["energy_j"], out["energy_uncertainty_j"],
                               rules) if measured else {"valid": None, "reasons": []}
    out["estimated_energy_j"], out["estimate_rule"] = estimate_energy(phases)
    out["estimates"] = all_estimates(phases)
    return out


def secondary_meters(run: RunFolder, wins: list[Window]) -> list[dict[str, Any]]:
    """One entry per secondary meter of the spec (`meters_extra`, in the order given on the command line),
    its trace `power-N.csv` split by the same phase windows as the primary; a meter that left no trace
    keeps its entry, with null energies."""
    extras = run.spec.get("meters_extra") or []
    wheres = run.spec.get("meters_extra_where") or []
    out = []
    for n, spec in enumerate(extras, 1):
        path = paths.secondary_power_csv(run.path, n)
        trace, meta = _trace_or_none(path), read_meta(path) or {}
        info = {"spec": spec, "where": wheres[n - 1] if n <= len(wheres) else None}
        info.update(meta.get("meter") or {})
        info["clock"] = meta.get("clock")
        entry: dict[str, Any] = {k: info.get(k) for k in ("spec", "kind", "where", "scope")}
        entry["phases"] = []
        for w in wins:
            e = (window_energy(trace, w.segments, info, clock_s=_clock_s(info))
                 if trace is not None and w.segments else {})
            entry["phases"].append({"name": w.name, **{k: e.get(k) for k in (
                "energy_j", "energy_uncertainty_j", "coverage", "mean_w")}})
        entry["totals"] = {k: _sum([p[k] for p in entry["phases"]])
                           for k in ("energy_j", "energy_uncertainty_j")}
        out.append(entry)
    return out


def _partial_accuracy(events: list[dict]) -> dict[str, Any]:
    """A run without `run_end`: the last epoch's top-1/top-5, and the best epoch of the last training
    phase (the one whose model the run was training, as `run_end`'s best_top1 is)."""
    epochs = [e for e in events if e["event"] == ev.EPOCH]
    last_phase = [e for e in epochs if epochs and e["phase"] == epochs[-1]["phase"]]
    return {"top1": epochs[-1]["top1"] if epochs else None, "top5": epochs[-1]["top5"] if epochs else None,
            "best_top1": max((e["top1"] for e in last_phase), default=None)}


def _partial_eb(run: RunFolder) -> dict[str, Any] | None:
    """A run without `run_end`: its own ticket's draw (the event at its ratio that saved a ticket)."""
    draws = [e for e in run.events if e["event"] == ev.EB_DRAWN and e["ratio"] == run.spec["prune_ratio"]
             and e.get("ticket")]
    if not draws:
        return None
    d = draws[0]
    return {"epoch": d["epoch"], "detected": not d.get("forced"), "forced": bool(d.get("forced")),
            "late": bool(d.get("late")), "note": d.get("note")}


def evaluated_models(wins: list[Window]) -> dict[str, str | None]:
    """Which model `best_top1` and `top1` evaluate: what the last training phase says (an LL retrain: its
    live 8-bit model, then the FP32 SWA model), `fp32` for a full-precision one, None when unknown."""
    trained = [w for w in wins if w.epochs > 0]
    if not trained:
        return {"best_model": None, "final_model": None}
    info = trained[-1].info
    if info.get("best_model"):
        return {"best_model": info["best_model"], "final_model": info.get("final_model")}
    known = "fp32" if info.get("precision") == "fp32" else None
    return {"best_model": known, "final_model": known}


def result_fields(run: RunFolder) -> dict[str, Any]:
    """status, accuracy, eb, params, channels and error: from `run_end` when the run finished, else from
    the events so far."""
    status = ev.record_status(run.events)
    end = ev.last_end(run.events) or {}
    done = end if status == ev.OK else {}
    return {"status": status, "accuracy": done.get("accuracy") or _partial_accuracy(run.events),
            "eb": done.get("eb") if done else _partial_eb(run), "error": end.get("error"),
            "params": done.get("params") or {"dense": run.first.get("params_dense"), "final": None},
            "channels": done.get("channels") or {"dense": run.first.get("channels_dense"), "final": None}}


def git_info(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                  check=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "dirty": None if status is None else bool(status)}


def _epoch_windows(events: list[dict], last: int) -> list[tuple[float, float]]:
    """(start, end) of epochs 1..`last` of a trunk's first phase: each from the event before it (phase
    start, resume, the previous epoch's checkpoint) to its own `epoch` event; a retrained epoch's last."""
    spans: dict[int, tuple[float, float]] = {}
    before = None
    for e in events:
        if e["event"] == ev.EPOCH and e["epoch"] <= last and before is not None:
            spans[e["epoch"]] = (before, e["t"])
        if e["event"] in (ev.PHASE_START, ev.RESUME, ev.EPOCH, ev.CHECKPOINT):
            before = e["t"]
    return [spans[k] for k in sorted(spans)]


def shared_block(run: RunFolder, meter: dict[str, Any]) -> dict[str, Any] | None:
    """A branch's `shared`: the trunk's epochs it started from, their time and energy integrated from the
    trunk's own trace (its copy under `results/trunks/<id>/`) as the run's phases are; None if not a branch."""
    branch = next((e for e in run.events if e["event"] == ev.BRANCH), None)
    if branch is None:
        return None
    folder = Path(paths.results_trunk(run.path.parent.parent, branch["trunk"]))
    events = ev.read_events(paths.events(folder))
    trace = _trace_or_none(paths.power_csv(folder))
    sessions = _sessions(events, trace.t if trace is not None else None)
    segments = [seg for a, b in _epoch_windows(events, branch["phase_epoch"]) for seg in _segments(a, b, sessions)]
    block = {"trunk": branch["trunk"], "phase_index": branch["phase_index"], "epochs": branch["phase_epoch"],
             "seconds": sum(b - a for a, b in segments), "energy_j": None, "energy_uncertainty_j": None,
             "net_energy_j": None, "coverage": None}
    if trace is not None and segments:
        accuracy = {"accuracy_rel": meter["accuracy"]["rel"], "accuracy_abs_w": meter["accuracy"]["abs_w"],
                    "accuracy_source": meter["accuracy"]["source"], "update_period_s": meter["update_period_s"]}
        e = window_energy(trace, segments, accuracy, meter["idle_w"], _clock_s(meter))
        block.update({k: e[k] for k in ("energy_j", "energy_uncertainty_j", "net_energy_j", "coverage")})
    return block


def _bill(phase: dict[str, Any], shared: dict[str, Any]) -> None:
    """Add the trunk's epochs to the phase that started from them: the run's cost as if alone."""
    phase["seconds"] += shared["seconds"]
    for key in ("energy_j", "energy_uncertainty_j", "net_energy_j"):
        if phase[key] is not None:
            phase[key] = None if shared[key] is None else phase[key] + shared[key]


def build_record(run_dir: Path, meter: dict | None = None, code_root: Path | None = None,
                 target: str = "local") -> dict[str, Any]:
    """The record of the run folder `run_dir` (a fetched copy), validated. `meter` overrides the primary
    meter's description (a laptop-side meter: where, clock offset); `code_root` is the checkout for `code`."""
    run = load_run(run_dir)
    block = meter_block(run, meter)
    if run.trace is not None:
        block["correction"] = _correction(run)
    wins = windows(run)
    phases = [phase_entry(w, run, block) for w in wins]
    shared = shared_block(run, block)
    if shared is not None and phases:
        _bill(phases[shared["phase_index"]], shared)
    measured = run.trace is not None and bool(phases) and all(p["energy_j"] is not None for p in phases)
    spec = run.spec
    record = {
        "schema": SCHEMA, "run_id": spec["run_id"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": spec["method"], "arch": spec["arch"], "depth": spec["depth"], "dataset": spec["dataset"],
        "prune_ratio": spec["prune_ratio"], "seed": spec["seed"], "config": spec,
        "phases": phases, "totals": totals(phases, block, measured, validity_rules(spec)), "meter": block,
        "secondary_meters": secondary_meters(run, wins),
        "device": run.first.get("device"), "target": target,
        "code": git_info(code_root) if code_root else {"git_commit": None, "dirty": None},
        "resumed": any(e["event"] == ev.RESUME for e in run.events), "shared": shared,
        "conditions": conditions_block(run.events),
        **result_fields(run),
    }
    record["accuracy"] = {**record["accuracy"], **evaluated_models(wins)}
    return validate(record)


def write_record(record: dict[str, Any], dest_dir: Path) -> Path:
    """Validate `record` and write `record.json` into `dest_dir` atomically."""
    path = Path(dest_dir) / paths.RECORD
    atomic_write_json(path, validate(record))
    return path
