"""Experiment configs: YAML in, frozen spec dicts out.

A config is a YAML mapping of spec keys (see `experiments.spec.FIELDS`) plus an optional `sweep:` mapping
of keys to lists; one run is made per combination of the sweep's values. `--set key=value` overrides a
key (the value is read as YAML, so `--set epochs=20`, `--set eb_ratios=[0.3,0.5]`). Every spec is
validated by the device's own `experiments.spec.resolve`, so the laptop rejects exactly what the board
would, and gets a `run_id`: `<UTC time>-<arch><depth>-<dataset>-<method>-p<ratio>-s<seed>`.
Methods that prune nothing (dense) take ratio 0, so a sweep over ratios runs them once.
"""
from __future__ import annotations

import itertools
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional

import yaml

from experiments.methods import METHODS
from experiments.spec import SpecError, resolve

from .errors import UsageError


class ConfigError(UsageError):
    """A config file or override is unusable; the message names the file or key and the fix."""


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {key}: cannot read value {value!r}: {err}") from err
    return out


def read_config(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"config {path} not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"config {path} is not valid YAML: {err}") from err
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping of spec keys, got {type(raw).__name__}")
    return raw


def run_id(spec: dict[str, Any], when: datetime) -> str:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    return (f"{stamp}-{spec['arch']}{spec['depth']}-{spec['dataset']}-{spec['method']}"
            f"-p{spec['prune_ratio']:g}-s{spec['seed']}")


def expand(raw: dict[str, Any], overrides: Optional[dict[str, Any]] = None,
           when: Optional[datetime] = None, source: str = "config") -> list[dict[str, Any]]:
    """Resolved specs (each with a run_id) for every combination of the config's sweep."""
    base = dict(raw)
    sweep = base.pop("sweep", None) or {}
    if not isinstance(sweep, dict):
        raise ConfigError(f"{source}: 'sweep' must map spec keys to lists of values")
    for key, values in sweep.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: sweep key '{key}' must be a non-empty list, got {values!r}")
    for key, value in (overrides or {}).items():
        sweep.pop(key, None)
        base[key] = value
    when = when or datetime.now(timezone.utc)
    specs: list[dict[str, Any]] = []
    seen: set[str] = set()
    keys = list(sweep)
    for combo in itertools.product(*(sweep[k] for k in keys)):
        raw_spec = dict(base)
        raw_spec.update(zip(keys, combo))
        method = raw_spec.get("method")
        if method in METHODS and not METHODS[method].needs_ratio:
            raw_spec["prune_ratio"] = 0.0
        try:
            spec = resolve(raw_spec)
        except SpecError as err:
            where = ", ".join(f"{k}={v}" for k, v in zip(keys, combo))
            raise ConfigError(f"{source}{' (' + where + ')' if where else ''}: {err}") from err
        spec["run_id"] = run_id(spec, when)
        if spec["run_id"] in seen:
            continue
        seen.add(spec["run_id"])
        specs.append(spec)
    return specs


def load_specs(path: Path, overrides: Optional[dict[str, Any]] = None,
               when: Optional[datetime] = None) -> list[dict[str, Any]]:
    return expand(read_config(path), overrides, when, source=str(path))
