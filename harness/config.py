"""Experiment configs: YAML in, frozen spec dicts out.

A config is a YAML mapping of spec keys (see `experiments.spec.FIELDS`) plus an optional `sweep:`. A
sweep maps keys to lists, and one run is made per combination of their values. Keys that only make sense
together are swept together: `arch,depth,dataset: [[vgg, 16, cifar10], [preresnet, 101, cifar100]]`
takes each inner list as one value per key. A sweep may also be a list of such mappings, whose
combinations are joined (e.g. a grid of EB Train runs plus one dense reference).
`order: interleaved` (beside `sweep:`) runs a comparison round-robin across its methods (A B A B ...,
not A A B B), so a drift of the board (temperature, ambient, a degrading battery of a meter) over the
sweep does not favour one method; the default `order: given` keeps the sweep's own order.
`--set key=value` overrides a key everywhere, swept or not (the value is read as YAML, so
`--set epochs=20`, `--set eb_ratios=[0.3,0.5]`). Every spec is validated by the device's own
`experiments.spec.resolve`, so the laptop rejects exactly what the board would.

A run's identity is its resolved spec. `run_id` is a readable part,
`<arch><depth>-<dataset>-<method>-p<ratio>-s<seed>`, plus a digest of the keys that name the run (`NAMING`,
always) and of every other key whose value differs from its default in `experiments.spec.FIELDS`; never of
`run_id` itself nor of `meter_where`/`meters_extra_where` (where a meter hangs follows from the target, not
the experiment). Measurement keys (`meter`, `meter_rate_hz`, `meter_idle_w`, `device`) count like any
other: a run measured with another meter is another measurement, so a `--meter none` trial never stands in
for a metered run. The same config therefore gives the same ids every time, and two runs share an id only
when their specs are identical; the only runs a sweep merges are such identical ones (dense takes ratio 0,
so a sweep over ratios runs it once). A key added to the table with a default that changes nothing (as
`experiments.spec` requires) leaves every id as it was, so an upgrade never restarts finished runs; a
default must never change (add a key instead), since a run at the old default would keep its id.

Run folders made while the digest covered every resolved key keep their ids: `adopt_existing` gives a spec
whose folder is missing the id of a folder with the same readable part whose `spec.json` resolves to the
same identity, and says so in one log line.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import logging
from pathlib import Path
from typing import Any, Iterable

import yaml

from experiments import paths
from experiments.methods import METHODS
from experiments.spec import BY_NAME, SET_BY_HARNESS, SpecError, check_possible, resolve
from experiments.spec import load as load_spec

from .errors import UsageError

log = logging.getLogger(__name__)

# Keys that are not part of the experiment: the id itself, and where the meters are sampled (the harness
# sets these from the target after the id is made).
NOT_IDENTITY = SET_BY_HARNESS
# The keys the readable part of a run id spells out: hashed whatever their value.
NAMING = ("arch", "depth", "dataset", "method", "prune_ratio", "seed")
DIGEST_CHARS = 10  # 40 bits: a collision is unlikely below ~10^5 runs in one results folder
ORDERS = ("given", "interleaved")  # `order:` beside `sweep:`: runs as listed, or round-robin across methods


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


def identity(spec: dict[str, Any]) -> dict[str, Any]:
    """What a run's id hashes: the naming keys, and every other identity key not at its default."""
    return {k: v for k, v in spec.items()
            if k not in NOT_IDENTITY and (k in NAMING or k not in BY_NAME or v != BY_NAME[k].default)}


def spec_digest(spec: dict[str, Any]) -> str:
    """Hex digest of the canonical JSON of a resolved spec's `identity`."""
    text = json.dumps(identity(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def run_id(spec: dict[str, Any]) -> str:
    """`<arch><depth>-<dataset>-<method>-p<ratio>-s<seed>-<digest>`: a plain folder name."""
    return f"{readable_id(spec)}-{spec_digest(spec)}"


def readable_id(spec: dict[str, Any]) -> str:
    return (f"{spec['arch']}{spec['depth']}-{spec['dataset']}-{spec['method']}"
            f"-p{spec['prune_ratio']:g}-s{spec['seed']}")


def adopt_existing(specs: list[dict[str, Any]], results: Path) -> None:
    """Give each spec without a folder under `results/runs/` the id of an existing folder of the same
    run made under an earlier id rule (same readable part, `spec.json` resolving to the same identity)."""
    runs = Path(paths.results_runs(results))
    for spec in specs:
        if (runs / spec["run_id"]).exists():
            continue
        name = readable_id(spec)
        for folder in sorted(runs.glob(name + "-*")):
            if folder.name.rsplit("-", 1)[0] == name and _same_run(folder, spec):
                log.info("%s: found as %s (made under the earlier run-id rule); keeping that id",
                         spec["run_id"], folder.name)
                spec["run_id"] = folder.name
                break


def _same_run(folder: Path, spec: dict[str, Any]) -> bool:
    try:
        old = load_spec(paths.spec(folder))
    except SpecError:  # unreadable, or keys this version no longer has: another run
        return False
    return identity(old) == identity(spec)


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
    order = base.pop("order", "given")
    if order not in ORDERS:
        raise ConfigError(f"{source}: 'order' = {order!r} is not allowed: use one of {', '.join(ORDERS)}")
    overrides = dict(overrides or {})
    base.update(overrides)
    specs: dict[str, dict[str, Any]] = {}
    for combo in _combinations(grids, overrides):
        spec = _resolve({**base, **combo}, combo, source)
        specs.setdefault(spec["run_id"], spec)
    return interleaved(list(specs.values())) if order == "interleaved" else list(specs.values())


def interleaved(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The specs round-robin across their methods: the first run of each method (in the order the methods
    first appear), then the second of each, ...; each method's own runs keep their order."""
    queues: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        queues.setdefault(spec["method"], []).append(spec)
    out = []
    for i in range(max((len(q) for q in queues.values()), default=0)):
        out += [q[i] for q in queues.values() if i < len(q)]
    return out


def load_specs(path: Path, overrides: dict[str, Any] | None = None, meters: list[str] | None = None,
               target_url: str | None = None, results: Path | None = None) -> list[dict[str, Any]]:
    """The config's resolved specs, as every command reads them. `meters` (`--meter`, the first the
    primary) replace the config's meters; with `target_url`, each meter's `meter_where` follows from it;
    with `results`, runs made under an earlier id rule keep their ids (`adopt_existing`)."""
    overrides = dict(overrides or {})
    if meters:
        from hw.meters import parse_spec
        for given in meters:
            parse_spec(given)  # a bad spec fails here, before any run folder exists
        overrides["meter"], overrides["meters_extra"] = meters[0], list(meters[1:])
    specs = expand(read_config(path), overrides, source=str(path))
    if target_url is not None:
        for spec in specs:
            spec["meter_where"] = meter_where(spec["meter"], target_url)
            spec["meters_extra_where"] = [meter_where(m, target_url) for m in spec["meters_extra"]]
    if results is not None:
        adopt_existing(specs, results)
    return specs


def meter_where(meter: str, target_url: str) -> str:
    """Serial meters hang off the laptop in an SSH setup; everything else is read where the run is."""
    if target_url in ("", "local"):
        return "device"
    from hw.meters import is_serial
    return "laptop" if is_serial(meter) else "device"


def differing_keys(specs: list[dict[str, Any]]) -> list[str]:
    """The identity keys whose values are not the same in every spec, in the spec's key order."""
    if not specs:
        return []
    keys = [k for k in specs[0] if k not in NOT_IDENTITY]
    return [k for k in keys if any(s.get(k) != specs[0].get(k) for s in specs[1:])]
