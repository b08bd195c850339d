"""Run records (`results/runs/<run_id>/record.json`) -> one pandas DataFrame, one row per run.

Phases are flattened into `<phase>_<field>` columns. Partial, failed and unreadable runs are kept and
flagged (`usable` is False) so the report can list them; `usable_runs` is what tables and figures use.
Runs whose Early-Bird search found no ticket, or found it late (`eb.late`), carry an `eb_flag`; they stay
in their cell (they are EB Train's real outcome and cost) and the tables mark them; `trusted_runs` is the
view without them (`ebt report --exclude-flagged`). Every run carries its `cell` (`analysis.cells`):
tables and figures average only within a cell.

Accuracy: `best_top1` is the official metric (the best epoch's top-1, as the official code reports);
`final_top1` the last evaluation; `best_model`/`final_model` say which model each is (an LL run's best is
its live 8-bit model, its final the FP32 SWA model). Energy: `energy_kj` is measured (with `energy_unc_kj`
and `energy_scope` where the record has them), `est_energy_kj` the default 8-bit estimate (`bits`),
`est_mac_energy_kj` and `est_fit_energy_kj` the `mac` and `paper-fit` rules'; older records without
uncertainty or scope keep those empty. `energy_valid` is the record's verdict on its energy
(`totals.validity.valid`: True, False, or None when unknown or absent) with `energy_invalid_reasons`.
"""
from __future__ import annotations

import glob
import json
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import cells, energy_estimate
from analysis.naming import dataset_name, eb_keys, methods, model_name
from analysis.schema import SCHEMA
from experiments import events as ev
from experiments import paths
from experiments.spec import BEST

log = logging.getLogger(__name__)

UNREADABLE = "unreadable"  # the analysis's own status for a record file that does not parse
PHASE_SUMS = ("seconds", "energy_j", "energy_uncertainty_j", "uncovered_s", "flops", "epochs", "samples")
NO_TICKET = "no ticket found"
TOO_LATE = "ticket drawn late (at or after the last lr decay, or with no epoch left to retrain)"
MODE_KEY = "power_mode"  # the spec key, and the field of the record's `conditions` and `device`
TEXT_COLUMNS = {"run_id", "status", "error", "method", "method_name", "arch", "model", "dataset", "dataset_name",
                "energy_source", "estimate_rule", "energy_scope", "meter_kind", "meter_where", "board", "run_dir",
                "eb_flag", "eb_note", "cell", "jetpack", "best_model", "final_model",
                "energy_invalid_reasons", "meter_spec", MODE_KEY}
MODE_CHANGED = "changed during the run"  # `power_mode` of a run whose board changed mode while it ran


def default_pattern(results: Path) -> str:
    """Every record under a results folder."""
    return str(Path(paths.results_runs(results)) / "*" / paths.RECORD)


def find_records(pattern: str) -> list[Path]:
    """Record files matching `pattern`; a match that is a run folder stands for its record."""
    found = []
    for hit in sorted(glob.glob(pattern)):
        path = Path(hit)
        if path.is_dir():
            path = path / paths.RECORD
        if path.is_file():
            found.append(path)
    return found


def load_records(pattern: str) -> pd.DataFrame:
    return records_frame(find_records(pattern))


def records_frame(record_paths: Iterable[Path]) -> pd.DataFrame:
    context = _Context.now()
    rows = []
    for path in record_paths:
        try:
            record = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")  # noqa: TRY004 (one handler for every bad record)
            rows.append(flatten(record, path.parent, context))
        except (OSError, ValueError) as exc:
            # A half-written or corrupt record must not sink the whole report: keep it as a flagged row.
            log.warning("unreadable record %s: %s", path, exc)
            rows.append({"run_id": path.parent.name, "status": UNREADABLE, "error": str(exc),
                         "run_dir": str(path.parent)})
    columns = columns_of(context)
    df = pd.DataFrame(rows).reindex(columns=list(dict.fromkeys(columns + [c for r in rows for c in r])))
    df["usable"] = df["status"].eq(ev.OK)
    df["created"] = pd.to_datetime(df["created"], utc=True, errors="coerce")
    return _numbers(df)


def _numbers(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as floats (None -> NaN), found by their values rather than a second list of names."""
    for col in df.columns:
        if col in TEXT_COLUMNS or df[col].dtype != object:
            continue
        values = df[col].dropna()
        if len(values) == 0 or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def usable_runs(df: pd.DataFrame, include_partial: bool = False) -> pd.DataFrame:
    """Runs that tables and figures may use: status ok, plus partial runs when asked. Failed never."""
    keep = df["status"].eq(ev.OK)
    if include_partial:
        keep |= df["status"].eq(ev.PARTIAL)
    return df[keep]


def trusted_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Runs without an Early-Bird flag (no ticket, or a late one): `ebt report --exclude-flagged`."""
    return df[df["eb_flag"].isna() | df["eb_flag"].eq("")]


class _Context:
    """What flattening needs from the method registry, read once per load."""

    def __init__(self, names: dict[str, str], eb: set[str]):
        self.names = names
        self.eb = eb

    @classmethod
    def now(cls) -> _Context:
        return cls({m.key: m.display for m in methods()}, eb_keys())


def columns_of(context: _Context) -> list[str]:
    """The frame's columns: those of an empty record (so an empty frame still has them)."""
    return list(flatten({"schema": SCHEMA}, Path(""), context)) + ["usable"]


def flatten(record: dict[str, Any], run_dir: Path, context: _Context) -> dict[str, Any]:
    schema = record.get("schema")
    if not isinstance(schema, int) or not 1 <= schema <= SCHEMA:
        raise ValueError(f"schema {schema!r}, this analysis reads 1 to {SCHEMA}")
    config = record.get("config") or {}
    method = record.get("method")
    row = _identity(record, run_dir, context)
    row.update(_schedule(config))
    row.update(_early_bird(record.get("eb") or {}, config, method in context.eb))
    row.update(_accuracy(record.get("accuracy") or {}, record.get("params") or {}))
    row.update(_validity(record.get("totals") or {}, record.get("phases") or []))
    row.update(_energy(record))
    row.update(_phase_columns(record.get("phases") or []))
    row.update(_shared(record.get("shared")))
    return row


def _shared(shared: dict[str, Any] | None) -> dict[str, Any]:
    """The trunk a run branched from and what of it its totals bill (docs/record.md `shared`): a sweep's
    real spending is the runs' energy less `shared_energy_kj`, plus each trunk once."""
    shared = shared or {}
    return {"shared_trunk": shared.get("trunk"), "shared_epochs": shared.get("epochs"),
            "shared_seconds": shared.get("seconds"), "shared_energy_kj": _kilo(shared.get("energy_j"))}


def _identity(record: dict[str, Any], run_dir: Path, context: _Context) -> dict[str, Any]:
    method, device = record.get("method"), record.get("device") or {}
    spec = cells.cell_spec(record)
    return {
        "run_id": record.get("run_id") or run_dir.name, "status": record.get("status"),
        "error": record.get("error"), "created": record.get("created"), "method": method,
        "method_name": context.names.get(method, method), "arch": record.get("arch"), "depth": record.get("depth"),
        "model": model_name(record.get("arch"), record.get("depth")), "dataset": record.get("dataset"),
        "dataset_name": dataset_name(record.get("dataset")), "prune_ratio": record.get("prune_ratio"),
        "seed": record.get("seed"), "board": device.get("board"), "jetpack": device.get("jetpack"),
        "resumed": bool(record.get("resumed")), "run_dir": str(run_dir),
        "cell": cells.digest(spec), "cell_spec": spec, MODE_KEY: held_mode(record),
    }


def held_mode(record: dict[str, Any]) -> str | None:
    """The power mode the run was held in: the conditions' one mode, else the device block's, else the
    spec's (`MODE_CHANGED` when the board changed mode during the run)."""
    during = ((record.get("conditions") or {}).get(MODE_KEY) or {}).get("during") or []
    if len(during) > 1:
        return MODE_CHANGED
    if during:
        return during[0]
    return (record.get("device") or {}).get(MODE_KEY) or (record.get("config") or {}).get(MODE_KEY)


def _schedule(config: dict[str, Any]) -> dict[str, Any]:
    epochs = config.get("epochs")
    # The spec gives the decays as fractions of `epochs` (0.5, 0.75 -> 80, 120 of 160).
    milestones = tuple(round(m * epochs) for m in config.get("lr_milestones") or ()) if epochs else ()
    search = config.get("search_lr_milestones")  # the search's own schedule (Table 1), else the main one
    return {"epochs": epochs, "lr": config.get("lr"), "lr_gamma": config.get("lr_gamma"),
            "lr_milestones": milestones, "search_lr": config.get("search_lr") or config.get("lr"),
            "search_lr_milestones": _epochs(search, epochs) if search is not None else milestones,
            "search_schedule_own": config.get("search_lr") is not None or search is not None,
            "eb_ratios": tuple(config.get("eb_ratios") or ()), "eb_draw_epoch": config.get("eb_draw_epoch"),
            "eb_stop": config.get("eb_stop", True)}


def _epochs(fractions, epochs: int | None) -> tuple:
    """LR decay epochs from the spec's fractions of `epochs` (0.5, 0.75 -> 80, 120 of 160)."""
    return tuple(round(m * epochs) for m in fractions or ()) if epochs else ()


def _early_bird(eb: dict[str, Any], config: dict[str, Any], is_eb: bool) -> dict[str, Any]:
    """Where the ticket was drawn (a fixed epoch from the config, else the detector's), and its flag."""
    fixed = config.get("eb_draw_epoch")
    best = fixed == BEST  # drawn at the search's best epoch: where it was is the record's
    flag = None
    if is_eb and eb.get("detected") is False and not eb.get("forced") and fixed is None:
        flag = NO_TICKET
    elif is_eb and (eb.get("late") or eb.get("retrain_epochs") == 0):
        flag = TOO_LATE
    return {"eb_epoch": eb.get("epoch"), "eb_ratio": eb.get("ratio"), "eb_epsilon": eb.get("epsilon"),
            "eb_detected": eb.get("detected"), "eb_late": eb.get("late"),
            "eb_retrain_epochs": eb.get("retrain_epochs"), "eb_distances": eb.get("distances"),
            "draw_epoch": (fixed if fixed is not None and not best else eb.get("epoch")) if is_eb else None,
            "drawn_at_best": best, "eb_flag": flag,
            "eb_note": eb.get("note")}


def _accuracy(acc: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return {"best_top1": acc.get("best_top1"), "final_top1": acc.get("top1"), "top5": acc.get("top5"),
            "best_model": acc.get("best_model"), "final_model": acc.get("final_model"),
            "params_dense": params.get("dense"), "params_final": params.get("final")}


def _validity(totals: dict[str, Any], phases: list[dict[str, Any]]) -> dict[str, Any]:
    """The record's energy verdict, run-wide and per phase (`<phase>_valid`); absent (older records): None."""
    verdict = totals.get("validity") or {}
    out: dict[str, Any] = {"energy_valid": verdict.get("valid"),
                           "energy_invalid_reasons": "; ".join(map(str, verdict.get("reasons") or [])) or None}
    for phase in phases:
        key = f"{phase.get('name') or 'phase'}_valid"
        valid = (phase.get("validity") or {}).get("valid")
        out[key] = False if out.get(key) is False else valid
    return out


def _energy(record: dict[str, Any]) -> dict[str, Any]:
    totals, meter, phases = record.get("totals") or {}, record.get("meter") or {}, record.get("phases") or []
    source = totals.get("energy_source") or "none"
    measured = source == "measured" and totals.get("energy_j") is not None
    est, est_unc = _estimate(phases, energy_estimate.DEFAULT)
    mac, mac_unc = _estimate(phases, energy_estimate.MAC)
    fit, _ = _estimate(phases, energy_estimate.PAPER_FIT)
    flops = totals.get("flops")
    return {
        "seconds": totals.get("seconds"), "energy_source": source,
        "energy_kj": totals["energy_j"] / 1e3 if measured else None,
        "energy_unc_kj": _kilo(totals.get("energy_uncertainty_j")) if measured else None,
        "energy_scope": totals.get("scope") if measured else None,
        "est_energy_kj": _kilo(est), "est_energy_unc_kj": _kilo(est_unc),
        "est_mac_energy_kj": _kilo(mac), "est_mac_energy_unc_kj": _kilo(mac_unc), "est_fit_energy_kj": _kilo(fit),
        "estimate_rule": energy_estimate.DEFAULT.name if est is not None else None,
        "flops": flops, "flops_p": None if flops is None else flops / 1e15,
        "meter_kind": meter.get("kind"), "meter_spec": meter.get("spec"), "meter_where": meter.get("where"),
        # the record's verdict on the run's measured energy (hw.energy.validity; None: not measured)
        "energy_valid": (totals.get("validity") or {}).get("valid") if measured else None,
        "energy_invalid_reasons": "; ".join((totals.get("validity") or {}).get("reasons") or []) or None,
        "meter_idle_w": meter.get("idle_w"), "meter_idle_std_w": meter.get("idle_std_w"),
        "secondary_meters": record.get("secondary_meters") or [],
        "phases": phases,
    }


def _estimate(phases: list[dict], rule: energy_estimate.Rule) -> tuple[float | None, float | None]:
    """(joules, uncertainty) of `rule` on the phases; the uncertainty scales with each phase's factor and is
    None when a phase lacks one."""
    joules, _ = energy_estimate.estimate(phases, rule)
    if joules is None:
        return None, None
    parts = [p.get("energy_uncertainty_j") for p in phases]
    if any(u is None for u in parts):
        return joules, None
    ratios = [energy_estimate.phase_ratio(p, rule) for p in phases]
    return joules, sum(u * r for u, r in zip(parts, ratios))


def _kilo(joules: float | None) -> float | None:
    return None if joules is None or (isinstance(joules, float) and math.isnan(joules)) else joules / 1e3


def _phase_columns(phases: list[dict[str, Any]]) -> dict[str, Any]:
    """`<name>_<field>`: additive fields summed over phases of the same name (a resumed run may split one).

    A sum with any missing part is missing, not a smaller number.
    """
    out: dict[str, Any] = {}
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
