"""The run record (`record.json`): its `SCHEMA` version and its structure, checked by `validate`.

The record builder (`harness.record`) validates every record before writing it, and the tests validate
what the builder makes, so a field can only be added here first. `docs/record.md` explains each field,
its unit and when it is null. Energy is in joules, power in watts, time in seconds (epoch seconds on
the device clock for instants); `scope` says what an energy figure covers (`hw.meters.base.SCOPES`).

A structure is a dict of `Key`s: the value's types, whether it may be null, and, for a nested dict or
a list of dicts, the structure of that dict. Keys not listed are refused, so the spec stays complete.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA = 2

NUM = (int, float)
STR = (str,)
BOOL = (bool,)
INT = (int,)
DICT = (dict,)
LIST = (list,)


@dataclass(frozen=True)
class Key:
    types: tuple
    null: bool = False
    fields: dict[str, "Key"] | None = None  # a dict's structure, or a list's item structure
    items: bool = False  # a list of `fields` dicts
    optional: bool = False  # may be absent (older producers, laptop-only entries)


def _n(types: tuple, **kw: Any) -> Key:
    return Key(types, null=True, **kw)


ACCURACY = {"rel": Key(NUM), "abs_w": Key(NUM), "source": Key(STR)}
# hw.energy.validity: valid null (no reasons) when nothing was measured
VALIDITY = {"valid": _n(BOOL), "reasons": Key(LIST)}
SAMPLING = {"kind": Key(STR), "window_s": _n(NUM), "source": _n(STR)}
CORRECTION = {"calibration": Key(STR), "ratio": Key(NUM), "ratio_uncertainty": Key(NUM), "reference": _n(STR),
              "board": _n(STR)}

PHASE = {
    "name": Key(STR), "epochs": Key(INT), "start": Key(NUM), "end": Key(NUM), "seconds": Key(NUM),
    "complete": Key(BOOL), "samples": Key(INT),
    "energy_j": _n(NUM), "energy_uncertainty_j": _n(NUM), "net_energy_j": _n(NUM), "mean_w": _n(NUM),
    "scope": _n(STR), "coverage": _n(NUM), "uncovered_s": _n(NUM),
    "flops": _n(NUM), "flops_note": _n(STR), "precision": _n(STR),
    "validity": Key(DICT, fields=VALIDITY), "energy_correction": _n(STR),
}

TOTALS = {
    "seconds": Key(NUM), "energy_j": _n(NUM), "energy_uncertainty_j": _n(NUM), "net_energy_j": _n(NUM),
    "scope": _n(STR), "coverage": _n(NUM), "uncovered_s": _n(NUM), "flops": _n(NUM),
    "energy_source": Key(STR), "estimated_energy_j": _n(NUM), "estimate_rule": _n(STR),
    "estimates": Key(DICT, optional=True, fields={"bits": _n(NUM), "mac": _n(NUM), "paper-fit": _n(NUM)}),
    "validity": Key(DICT, fields=VALIDITY), "energy_correction": _n(STR),
}

METER = {
    "spec": _n(STR), "kind": _n(STR), "where": _n(STR), "scope": _n(STR), "rate_hz": _n(NUM),
    "achieved_hz": _n(NUM), "idle_w": _n(NUM), "idle_std_w": _n(NUM), "gaps": Key(LIST),
    "gap_s": _n(NUM), "samples": _n(INT), "malformed": _n(INT), "reconnects": _n(INT),
    "accuracy": Key(DICT, fields=ACCURACY), "max_w": _n(NUM), "update_period_s": _n(NUM),
    "counter": _n(BOOL), "provenance": _n(DICT), "notes": _n(LIST, optional=True),
    "clock": _n(DICT, optional=True), "sampling": _n(DICT, fields=SAMPLING), "spikes": _n(INT),
    "correction": _n(DICT, fields=CORRECTION),
}

SECONDARY_PHASE = {"name": Key(STR), "energy_j": _n(NUM), "energy_uncertainty_j": _n(NUM),
                   "coverage": _n(NUM), "mean_w": _n(NUM)}

SECONDARY = {
    "spec": _n(STR), "kind": _n(STR), "where": _n(STR), "scope": _n(STR),
    "phases": Key(LIST, fields=SECONDARY_PHASE, items=True),
    "totals": Key(DICT, fields={"energy_j": _n(NUM), "energy_uncertainty_j": _n(NUM)}),
}

CONDITION_PHASE = {"name": Key(STR), "temperatures_start_c": _n(DICT), "temperatures_end_c": _n(DICT),
                   "gpu_below_max_s": _n(NUM), "cpu_below_max_s": _n(NUM)}

CONDITIONS = {
    "power_mode": Key(DICT, fields={"requested": _n(STR), "before": _n(STR), "during": Key(LIST),
                                    "after": _n(STR)}),
    "clocks": Key(DICT, fields={"requested": _n(STR), "locked_before": _n(BOOL), "locked_during": _n(BOOL),
                                "locked_after": _n(BOOL)}),
    "cooldown": _n(DICT), "phases": Key(LIST, fields=CONDITION_PHASE, items=True), "throttled": _n(BOOL),
    "error": _n(STR),
}

RECORD = {
    "schema": Key(INT), "run_id": Key(STR), "status": Key(STR), "created": Key(STR),
    "method": Key(STR), "arch": Key(STR), "depth": Key(INT), "dataset": Key(STR),
    "prune_ratio": Key(NUM), "seed": Key(INT), "config": Key(DICT),
    "eb": _n(DICT), "params": Key(DICT), "channels": Key(DICT),
    "accuracy": Key(DICT, fields={"top1": _n(NUM), "top5": _n(NUM), "best_top1": _n(NUM),
                                  "best_model": _n(STR, optional=True), "final_model": _n(STR, optional=True)}),
    "phases": Key(LIST, fields=PHASE, items=True), "totals": Key(DICT, fields=TOTALS),
    "meter": Key(DICT, fields=METER), "secondary_meters": Key(LIST, fields=SECONDARY, items=True),
    "device": _n(DICT), "target": Key(STR),
    "code": Key(DICT, fields={"git_commit": _n(STR), "dirty": _n(BOOL)}),
    "resumed": Key(BOOL), "error": _n(STR),
    "conditions": _n(DICT, fields=CONDITIONS, optional=True),
    "shared": _n(DICT, optional=True, fields={
        "trunk": Key(STR), "phase_index": Key(INT), "epochs": Key(INT), "seconds": Key(NUM),
        "energy_j": _n(NUM), "energy_uncertainty_j": _n(NUM), "net_energy_j": _n(NUM), "coverage": _n(NUM)}),
}


class SchemaError(ValueError):
    """A record does not have the structure of `RECORD`; the message names the field."""


def validate(record: dict[str, Any]) -> dict[str, Any]:
    """`record` itself when it matches `RECORD` and carries this `SCHEMA`; SchemaError otherwise."""
    _check(record, RECORD, "record")
    if record["schema"] != SCHEMA:
        raise SchemaError(f"record.schema is {record['schema']!r}, this code writes and reads {SCHEMA}")
    return record


def _check(obj: Any, spec: dict[str, Key], where: str) -> None:
    if not isinstance(obj, dict):
        raise SchemaError(f"{where} is {type(obj).__name__}, expected an object")
    unknown = sorted(set(obj) - set(spec))
    if unknown:
        raise SchemaError(f"{where} has fields the schema does not define: {', '.join(unknown)}")
    for name, key in spec.items():
        if name not in obj:
            if key.optional:
                continue
            raise SchemaError(f"{where}.{name} is missing")
        _value(obj[name], key, f"{where}.{name}")


def _value(value: Any, key: Key, where: str) -> None:
    if value is None:
        if not key.null:
            raise SchemaError(f"{where} is null; it must always be set")
        return
    # bool is an int in Python: a flag where a number belongs (or the reverse) is a producer bug
    if isinstance(value, bool) != (key.types == BOOL) or not isinstance(value, key.types):
        raise SchemaError(f"{where} = {value!r} has type {type(value).__name__}, expected "
                          + " or ".join(t.__name__ for t in key.types))
    if key.fields is None:
        return
    if key.items:
        for i, item in enumerate(value):
            _check(item, key.fields, f"{where}[{i}]")
    else:
        _check(value, key.fields, where)
