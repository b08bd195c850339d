"""Run records (`results/runs/<run_id>/record.json`, schema 1) -> one pandas DataFrame, one row per run.

Phases are flattened into `<phase>_<field>` columns. Partial, failed and unreadable runs are kept and
flagged (`usable` is False) so the report can list them; `usable_runs` is what tables and figures use.
"""
from __future__ import annotations

import glob
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

import pandas as pd

from analysis.naming import dataset_name, method_name, model_name

log = logging.getLogger(__name__)

SCHEMA = 1
RECORD_FILE = "record.json"
DEFAULT_RUNS = "results/runs/*/record.json"
EB_METHODS = ("ebtrain-ff", "ebtrain-reinit", "ebtrain-lf", "ebtrain-ll")
PHASE_SUMS = ("seconds", "energy_j", "flops", "epochs", "samples")


def find_records(pattern: str = DEFAULT_RUNS) -> List[Path]:
    """Record files matching `pattern`; a match that is a run folder stands for its record.json."""
    found = []
    for hit in sorted(glob.glob(pattern)):
        path = Path(hit)
        if path.is_dir():
            path = path / RECORD_FILE
        if path.is_file():
            found.append(path)
    return found


def load_records(pattern: str = DEFAULT_RUNS) -> pd.DataFrame:
    return records_frame(find_records(pattern))


def records_frame(paths: Iterable[Path]) -> pd.DataFrame:
    rows = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                record = json.load(fh)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            rows.append(flatten(record, path.parent))
        except (OSError, ValueError) as exc:
            # A half-written or corrupt record must not sink the whole report: keep it as a flagged row.
            log.warning("unreadable record %s: %s", path, exc)
            rows.append({"run_id": path.parent.name, "status": "unreadable", "error": str(exc),
                         "run_dir": str(path.parent)})
    df = pd.DataFrame(rows, columns=_COLUMNS if not rows else None)
    for col in _COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["usable"] = df["status"].eq("ok")
    df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def usable_runs(df: pd.DataFrame, include_partial: bool = False) -> pd.DataFrame:
    """Runs that tables and figures may use: status ok, plus partial runs when asked. Failed never."""
    keep = df["status"].eq("ok")
    if include_partial:
        keep |= df["status"].eq("partial")
    return df[keep]


def flatten(record: Dict[str, Any], run_dir: Path) -> Dict[str, Any]:
    if record.get("schema") != SCHEMA:
        raise ValueError(f"schema {record.get('schema')!r}, expected {SCHEMA}")
    config = record.get("config") or {}
    eb = record.get("eb") or {}
    params = record.get("params") or {}
    acc = record.get("accuracy") or {}
    totals = record.get("totals") or {}
    meter = record.get("meter") or {}
    device = record.get("device") or {}
    method = record.get("method")
    epochs = config.get("epochs")
    row: Dict[str, Any] = {
        "run_id": record.get("run_id") or run_dir.name,
        "status": record.get("status"),
        "error": record.get("error"),
        "created": record.get("created"),
        "method": method,
        "method_name": method_name(method),
        "arch": record.get("arch"),
        "depth": record.get("depth"),
        "model": model_name(record.get("arch"), record.get("depth")),
        "dataset": record.get("dataset"),
        "dataset_name": dataset_name(record.get("dataset")),
        "prune_ratio": record.get("prune_ratio"),
        "seed": record.get("seed"),
        "epochs": epochs,
        "lr": config.get("lr"),
        "lr_gamma": config.get("lr_gamma", 0.1),
        "lr_milestones": _milestone_epochs(config.get("lr_milestones") or (), epochs),
        "eb_ratios": tuple(config.get("eb_ratios") or ((eb.get("ratio"),) if eb.get("ratio") is not None else ())),
        "eb_draw_epoch": _draw_config(config.get("eb_draw_epoch"), epochs),
        "eb_epoch": eb.get("epoch"),
        "eb_ratio": eb.get("ratio"),
        "eb_epsilon": eb.get("epsilon"),
        "eb_detected": eb.get("detected"),
        "eb_distances": eb.get("distances"),
        "params_dense": params.get("dense"),
        "params_final": params.get("final"),
        "top1": acc.get("top1"),
        "top5": acc.get("top5"),
        "best_top1": acc.get("best_top1"),
        "seconds": totals.get("seconds"),
        "energy_j": totals.get("energy_j"),
        "energy_source": totals.get("energy_source") or "none",
        "estimated_energy_j": totals.get("estimated_energy_j"),
        "estimate_rule": totals.get("estimate_rule"),
        "flops": totals.get("flops"),
        "meter_kind": meter.get("kind"),
        "meter_where": meter.get("where"),
        "board": device.get("board"),
        "resumed": bool(record.get("resumed")),
        "run_dir": str(run_dir),
        "phases": record.get("phases") or [],
    }
    # Where the ticket was drawn: a fixed epoch from the config, else the detector's epoch.
    if method in EB_METHODS:
        row["draw_epoch"] = row["eb_draw_epoch"] if row["eb_draw_epoch"] is not None else row["eb_epoch"]
    else:
        row["draw_epoch"] = None
    # Energy kinds never share a column: a measured kJ and an estimated kJ are different quantities.
    source = row["energy_source"]
    measured = row["energy_j"] if source == "measured" else None
    estimated = row["estimated_energy_j"]
    if estimated is None and source == "estimated":
        estimated = row["energy_j"]
    row["energy_kj"] = None if measured is None else measured / 1e3
    row["est_energy_kj"] = None if estimated is None else estimated / 1e3
    flops = row["flops"]
    if flops is None:
        # Only when every phase has a count is the sum the run's total; otherwise it stays missing.
        counts = [p.get("flops") for p in row["phases"]]
        flops = sum(counts) if counts and all(c is not None for c in counts) else None
        row["flops"] = flops
    row["flops_p"] = None if flops is None else flops / 1e15
    row.update(_phase_columns(row["phases"]))
    return row


def _milestone_epochs(milestones, epochs: Optional[int]) -> tuple:
    """LR decay epochs; the spec gives them as fractions of `epochs` (0.5, 0.75 -> 80, 120 of 160)."""
    if epochs and all(0 < m < 1 for m in milestones):
        return tuple(int(round(m * epochs)) for m in milestones)
    return tuple(int(m) for m in milestones)


def _draw_config(value: Any, epochs: Optional[int]) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, str) and value.lower() == "final":
        return epochs
    return value


def _phase_columns(phases: List[Dict[str, Any]]) -> Dict[str, Any]:
    """`<name>_<field>`: additive fields summed over phases of the same name (a resumed run may split one).

    A sum with any missing part is missing, not a smaller number.
    """
    out: Dict[str, Any] = {}
    for phase in phases:
        name = phase.get("name") or "phase"
        for field in PHASE_SUMS:
            key, value = f"{name}_{field}", phase.get(field)
            if value is None or (key in out and out[key] is None):
                out[key] = None
            else:
                out[key] = out.get(key, 0) + value
        cov = phase.get("coverage")
        key = f"{name}_coverage"
        out[key] = None if cov is None or (key in out and out[key] is None) else min(out.get(key, cov), cov)
    for name in {p.get("name") or "phase" for p in phases}:
        seconds, joules = out[f"{name}_seconds"], out[f"{name}_energy_j"]
        out[f"{name}_mean_w"] = joules / seconds if seconds and joules is not None else None
    return out


_COLUMNS = [
    "run_id", "status", "error", "created", "method", "method_name", "arch", "depth", "model", "dataset",
    "dataset_name", "prune_ratio", "seed", "epochs", "lr", "lr_gamma", "lr_milestones", "eb_ratios", "eb_draw_epoch", "eb_epoch",
    "eb_ratio", "eb_epsilon", "eb_detected", "eb_distances", "draw_epoch", "params_dense", "params_final",
    "top1", "top5", "best_top1", "seconds", "energy_j", "energy_source", "estimated_energy_j",
    "estimate_rule", "energy_kj", "est_energy_kj", "flops", "flops_p", "meter_kind", "meter_where", "board",
    "resumed", "run_dir", "phases",
]
_NUMERIC = [
    "depth", "prune_ratio", "seed", "epochs", "lr", "lr_gamma", "eb_draw_epoch", "eb_epoch", "eb_ratio", "eb_epsilon",
    "draw_epoch", "params_dense", "params_final", "top1", "top5", "best_top1", "seconds", "energy_j",
    "estimated_energy_j", "energy_kj", "est_energy_kj", "flops", "flops_p",
]
