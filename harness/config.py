"""Experiment configs: YAML in, frozen spec dicts out.

A config is a YAML mapping of spec keys (see `experiments.spec.FIELDS`) plus an optional `sweep:`. A
sweep maps keys to lists, and one run is made per combination of their values. Keys that only make sense
together are swept together: `arch,depth,dataset: [[vgg, 16, cifar10], [preresnet, 101, cifar100]]`
takes each inner list as one value per key. A sweep may also be a list of such mappings, whose
combinations are joined (e.g. a grid of EB Train runs plus one dense reference).
`--set key=value` overrides a key everywhere, swept or not (the value is read as YAML, so
`--set epochs=20`, `--set eb_ratios=[0.3,0.5]`). Every spec is validated by the device's own
`experiments.spec.resolve`, so the laptop rejects exactly what the board would.

A run's identity is its resolved spec. `run_id` is a readable part,
`<arch><depth>-<dataset>-<method>-p<ratio>-s<seed>`, plus a digest of every resolved key except
`run_id` itself and `meter_where`/`meters_extra_where` (where a meter hangs follows from the target, not
the experiment). Measurement keys (`meter`, `meter_rate_hz`, `meter_idle_w`, `device`) are part of it: a run measured
with another meter is another measurement, so a `--meter none` trial never stands in for a metered run.
The same config therefore gives the same ids every time, and two runs share an id only when their specs
are identical; the only runs a sweep merges are such identical ones (dense takes ratio 0, so a sweep
over ratios runs it once). A new spec key, or a changed default, changes the digests of all runs: the
resolved spec is what a run is.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any, Iterable

import yaml

from experiments.methods import METHODS
from experiments.spec import SpecError, check_possible, resolve

from .errors import UsageError

# Keys that are not part of the experiment: the id itself, and where the meters are sampled (the harness
# sets these from the target after the id is made).
NOT_IDENTITY = ("run_id", "meter_where", "meters_extra_where")
DIGEST_CHARS = 10  # 40 bits: a collision is unlikely below ~10^5 runs in one results folder


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


def spec_digest(spec: dict[str, Any]) -> str:
    """Hex digest of the canonical JSON of every identity key of a resolved spec."""
    body = {k: v for k, v in spec.items() if k not in NOT_IDENTITY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def run_id(spec: dict[str, Any]) -> str:
    """`<arch><depth>-<dataset>-<method>-p<ratio>-s<seed>-<digest>`: a plain folder name."""
    return (f"{spec['arch']}{spec['depth']}-{spec['dataset']}-{spec['method']}"
            f"-p{spec['prune_ratio']:g}-s{spec['seed']}-{spec_digest(spec)}")


def _grids(sweep: Any, source: str) -> list[dict[str, list]]:
    """The sweep as a list of grids (key -> non-empty list of values)."""
    grids = sweep if isinstance(sweep, list) else [sweep]
    for grid in grids:
        if not isinstance(grid, dict):
            raise ConfigError(f"{source}: 'sweep' must map spec keys to lists of values "
                              f"(or be a list of such mappings)")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: sweep key '{key}' must be a non-empty list, got {values!r}")
            names = _names(key)
            if len(names) > 1 and not all(isinstance(v, list) and len(v) == len(names) for v in values):
                raise ConfigError(f"{source}: sweep key '{key}' must list [{', '.join(names)}] tuples, "
                                  f"{len(names)} values each")
    return grids or [{}]


def _names(key: str) -> list[str]:
    return [k.strip() for k in key.split(",")]


def _combinations(grids: list[dict[str, list]], overrides: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Each grid's combinations in order, without the keys an override fixes."""
    for grid in grids:
        for combo in itertools.product(*grid.values()):
            point: dict[str, Any] = {}
            for key, value in zip(grid, combo):
                names = _names(key)
                point.update(zip(names, value if len(names) > 1 else [value]))
            yield {k: v for k, v in point.items() if k not in overrides}


def _resolve(raw_spec: dict[str, Any], where: dict[str, Any], source: str) -> dict[str, Any]:
    method = raw_spec.get("method")
    if method in METHODS and not METHODS[method].needs_ratio:
        raw_spec["prune_ratio"] = 0.0
    try:
        spec = resolve(raw_spec)
        check_possible(spec)
    except SpecError as err:
        at = ", ".join(f"{k}={v}" for k, v in where.items())
        raise ConfigError(f"{source}{' (' + at + ')' if at else ''}: {err}") from err
    spec["run_id"] = run_id(spec)
    return spec


def expand(raw: dict[str, Any], overrides: dict[str, Any] | None = None,
           source: str = "config") -> list[dict[str, Any]]:
    """Resolved specs (each with its run_id) for every combination of the config's sweep, in order;
    identical specs once."""
    base = dict(raw)
    grids = _grids(base.pop("sweep", None) or {}, source)
    overrides = dict(overrides or {})
    base.update(overrides)
    specs: dict[str, dict[str, Any]] = {}
    for combo in _combinations(grids, overrides):
        spec = _resolve({**base, **combo}, combo, source)
        specs.setdefault(spec["run_id"], spec)
    return list(specs.values())


def load_specs(path: Path, overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return expand(read_config(path), overrides, source=str(path))


def differing_keys(specs: list[dict[str, Any]]) -> list[str]:
    """The identity keys whose values are not the same in every spec, in the spec's key order."""
    if not specs:
        return []
    keys = [k for k in specs[0] if k not in NOT_IDENTITY]
    return [k for k in keys if any(s.get(k) != specs[0].get(k) for s in specs[1:])]
