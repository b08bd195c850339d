"""What a sweep will cost before board-hours are spent: hours and kJ per run and for the whole sweep.

A short calibration on the target (`python3 -m experiments.calibrate`: a few training steps per distinct
model shape on synthetic batches, meter on) gives each shape's step time, evaluation time, checkpoint time
and mean power. Each run is then laid out phase by phase from the method registry, and every estimate is
labelled `estimated` with the rule it follows:

- time of a phase = epochs x (training batches x step time + test batches x evaluation time) x the phase
  model's forward FLOPs over the calibrated (dense) model's (`analysis.flops`), + one checkpoint an epoch;
  a run adds the runner's start-up (the calibration's own import time);
- a phase in emulated low precision costs at least its FP32 time and energy: the board computes it in
  FP32 and quantises besides, so the larger of the two calibrations counts;
- the Early-Bird ticket is assumed drawn at `eb_draw_epoch` when the spec fixes it; else at the
  (median) epoch where ok records under `results/` of the same search (the search phase's `ticket_keys`)
  drew theirs; else at `EB_DRAW_FRACTION` of the schedule, not before the mask queue is full (`eb_queue`);
- each phase says the model shape it leaves (`planned_cfg`): a channel-pruned model is assumed pruned
  uniformly, every layer keeping (1 - prune_ratio) of its channels; unstructured masks (LT, SNIP) leave
  the architecture, hence the FLOPs, dense;
- pruning steps themselves (ThiNet's layer-wise reconstruction, SNIP's scores) and the dataset's loading
  are not counted;
- energy = mean measured power of the phase's shape x its time; null when the target has no meter.

Calibrations are kept under `results/calibrations/`, one file per target and shape, so `--dry-run`
shows the table again without touching the target.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from experiments import events as ev
from experiments import paths
from experiments import phases as ph
from experiments.datasets import DATASETS
from experiments.methods import METHODS
from experiments.models import default_cfg
from experiments.spec import BEST, SpecError, num_classes, resolve
from hw.fileio import atomic_write_json

from .errors import EbtError, UsageError

log = logging.getLogger(__name__)

EB_DRAW_FRACTION = 0.15
CALIBRATIONS = "calibrations"
CALIBRATE_TIMEOUT_S = 900.0
BUDGET_S = 30.0


@dataclass(frozen=True)
class Shape:
    """A model shape to calibrate: the dense model of a spec, in one precision."""

    arch: str
    depth: int
    cfg: tuple
    num_classes: int
    input_size: int
    batch_size: int
    device: str
    bits: int | None

    @property
    def key(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        bits = f"-b{self.bits}" if self.bits else ""
        return f"{self.arch}{self.depth}-c{self.num_classes}-bs{self.batch_size}-{self.device}{bits}-{digest}"

    def request(self) -> dict[str, Any]:
        return dict(asdict(self), cfg=list(self.cfg), key=self.key)


@dataclass
class PhasePlan:
    name: str
    epochs: int
    cfg: list
    shape: Shape
    hours: float = 0.0          # estimated, once `estimate` has priced it
    kj: float | None = None


@dataclass
class RunPlan:
    run_id: str
    method: str
    phases: list[PhasePlan]
    eb: str = "-"  # where the ticket is assumed drawn, and by which rule (`eb_epoch`)
    hours: float | None = None
    kj: float | None = None
    pflops: float = 0.0
    notes: list[str] = field(default_factory=list)


class _Stub:
    """What a phase's `planned_epochs` reads of a run, before the run exists."""

    def __init__(self, spec: dict[str, Any], eb_epoch: int):
        self.spec = spec
        self.state = {ph.STATE_EB: {"epoch": eb_epoch}}


def _search(spec: dict[str, Any]) -> Any:
    """The phase that draws the run's ticket, None when the method has none."""
    return next((p for p in METHODS[spec["method"]].phases() if p.draws_ticket), None)


def _search_identity(spec: dict[str, Any]) -> list | None:
    """What decides when the run's ticket is drawn: the search phase's kind and its `ticket_keys`."""
    search = _search(spec)
    if search is None:
        return None
    return search.identity(spec)[:2] + [{k: spec[k] for k in search.ticket_keys()}]


def _same_search(config: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a record's `config` ran the very search `spec` would (a config of an unknown method or
    older keys is not the same)."""
    try:
        return _search_identity(resolve(config)) == _search_identity(spec)
    except (SpecError, KeyError):
        return False


def recorded_eb_epochs(results: Path) -> list[tuple[dict, int]]:
    """(config, ticket epoch) of every ok record under `results` whose search drew a ticket."""
    found = []
    for path in Path(paths.results_runs(results)).glob("*/" + paths.RECORD):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        eb = record.get("eb") or {}
        if record.get("status") == ev.OK and eb.get("detected") and not eb.get("forced") and eb.get("epoch"):
            found.append((record.get("config") or {}, int(eb["epoch"])))
    return found


def eb_epoch(spec: dict[str, Any], recorded: list[tuple[dict, int]]) -> tuple[int, str]:
    """Where the ticket is assumed drawn, and which rule says so."""
    if spec["eb_draw_epoch"] == BEST:  # the search runs its budget; its top-1 peaks after the last lr decay
        last = max(spec["search_lr_milestones"] or spec["lr_milestones"], default=1.0)
        return max(1, round(last * spec["epochs"])), "assumed: best search top-1, after the last lr decay"
    if spec["eb_draw_epoch"]:
        return spec["eb_draw_epoch"], "fixed"
    seen = sorted(epoch for config, epoch in recorded if _same_search(config, spec))
    if seen:
        return seen[len(seen) // 2], "records"
    return min(spec["epochs"], max(spec["eb_queue"], round(EB_DRAW_FRACTION * spec["epochs"]))), "assumed"


def _precision_bits(phase: Any, spec: dict[str, Any]) -> int | None:
    return None if not ph.is_low_precision(phase.precision(spec)) else int(spec["lp_bits"])


def phases_of(spec: dict[str, Any], eb_at: int = 1) -> list[PhasePlan]:
    """The training phases of a run with their planned epochs and (assumed) models, the ticket drawn at
    epoch `eb_at` (see `eb_epoch`; the model shapes do not depend on it). Each phase says the shape it
    leaves (`planned_cfg`); only those that train (`trains`) take time."""
    dense = default_cfg(spec["arch"], spec["depth"], spec["width"])
    cfg = dense
    stub = _Stub(spec, eb_at)
    out = []
    for phase in METHODS[spec["method"]].phases():
        try:
            cfg = phase.planned_cfg(spec, cfg)
        except NotImplementedError as err:
            raise UsageError(f"method '{spec['method']}' cannot be planned: {err}") from None
        if not phase.trains:
            continue
        epochs = phase.plan_epochs(stub)
        shape = Shape(spec["arch"], int(spec["depth"]), tuple(dense), num_classes(spec),
                      DATASETS[spec["dataset"]].input_size, int(spec["batch_size"]), spec["device"],
                      _precision_bits(phase, spec))
        out.append(PhasePlan(phase.name, int(epochs), list(cfg), shape))
    return out


def fp32_twin(shape: Shape) -> Shape:
    """The same shape in FP32: what an emulated low-precision phase costs at least."""
    return replace(shape, bits=None)


def shapes_for(specs: list[dict[str, Any]]) -> list[Shape]:
    """Every shape the specs' phases train, and the FP32 twin of each low-precision one."""
    shapes = [p.shape for spec in specs for p in phases_of(spec)]
    return list(dict.fromkeys(shapes + [fp32_twin(s) for s in shapes]))


# --- calibrations -------------------------------------------------------------------------------------

def _slug(target_url: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", target_url).strip("_")[:80]


def calibration_path(results: Path, target_url: str, shape: Shape) -> Path:
    return Path(results) / CALIBRATIONS / f"{_slug(target_url)}--{shape.key}.json"


def cached(results: Path, target_url: str, shapes: list[Shape]) -> dict[Shape, dict[str, Any]]:
    found = {}
    for shape in shapes:
        path = calibration_path(results, target_url, shape)
        if path.exists():
            found[shape] = json.loads(path.read_text())
    return found


def calibrate(run_module: Callable[..., tuple[int, str, str]], code_dir: str, target_url: str,
              shapes: list[Shape], meter: str, results: Path, budget_s: float = BUDGET_S) -> dict[Shape, dict]:
    """Calibrate `shapes` on the target through `run_module(code_dir, argv, timeout)`; cache each result."""
    request = {"shapes": [s.request() for s in shapes], "meter": meter, "budget_s": budget_s}
    rc, out, err = run_module(code_dir, ["experiments.calibrate", json.dumps(request)], timeout=CALIBRATE_TIMEOUT_S)
    if rc != 0:
        last = (err.strip().splitlines() or ["no output"])[-1]
        raise EbtError(f"calibration on {target_url} failed (exit {rc}): {last}; check the target with `ebt doctor`")
    answer = json.loads(out)
    found = {}
    for shape in shapes:
        entry = dict(answer["shapes"][shape.key], meter=answer.get("meter"), startup_s=answer["startup_s"],
                     shape=shape.request(), target=target_url)
        atomic_write_json(calibration_path(results, target_url, shape), entry)
        found[shape] = entry
    return found


# --- estimates ----------------------------------------------------------------------------------------

def _batches(samples: int, batch: int) -> int:
    return math.ceil(samples / batch)


def data_sizes(spec: dict[str, Any]) -> tuple[int, int]:
    train, test = DATASETS[spec["dataset"]].train, DATASETS[spec["dataset"]].test
    return (min(train, spec["train_subset"] or train), min(test, spec["test_subset"] or test))


def _epoch_cost(cal: dict[str, Any], ratio: float, train: int, test: int, batch: int) -> tuple[float, float | None]:
    """(seconds, joules or None) of one epoch of a model with `ratio` of the calibrated shape's FLOPs."""
    epoch_s = ratio * (_batches(train, batch) * cal["train_step_s"] + _batches(test, batch) * cal["eval_step_s"]) \
        + cal["checkpoint_s"]
    return epoch_s, None if cal["mean_w"] is None else cal["mean_w"] * epoch_s


def human(x: float) -> str:
    """A number for people: three significant digits, thousands separated (1,070; 14.4; 0.0312)."""
    rounded = float(f"{x:.3g}")
    return f"{int(rounded):,}" if abs(rounded) >= 100 else f"{rounded:g}"


def estimate(spec: dict[str, Any], calibrations: dict[Shape, dict[str, Any]],
             recorded: list[tuple[dict, int]] = ()) -> RunPlan:
    """Hours, kJ and PFLOPs of one run from its phases and the calibrations of their shapes; `recorded`
    (from `recorded_eb_epochs`) tells when earlier runs of the same search drew their tickets."""
    from analysis.flops import forward_flops, training_flops

    train, test = data_sizes(spec)
    at, rule = eb_epoch(spec, list(recorded))
    plan = RunPlan(spec["run_id"], spec["method"], phases_of(spec, at))
    if _search(spec) is not None:
        plan.eb = f"{at} ({rule})"
    seconds, joules = 0.0, 0.0
    for p in plan.phases:
        model = {"arch": spec["arch"], "depth": spec["depth"], "num_classes": p.shape.num_classes}
        ratio = forward_flops(dict(model, cfg=p.cfg), spec["dataset"]) / forward_flops(
            dict(model, cfg=list(p.shape.cfg)), spec["dataset"])
        costs = [_epoch_cost(calibrations[s], ratio, train, test, spec["batch_size"])
                 for s in dict.fromkeys([p.shape, fp32_twin(p.shape)])]
        epoch_s = max(c[0] for c in costs)
        epoch_j = None if any(c[1] is None for c in costs) else max(c[1] for c in costs)
        seconds += p.epochs * epoch_s
        joules = None if joules is None or epoch_j is None else joules + p.epochs * epoch_j
        p.hours = p.epochs * epoch_s / 3600.0
        p.kj = None if epoch_j is None else p.epochs * epoch_j / 1000.0
        plan.pflops += training_flops(dict(model, cfg=p.cfg), spec["dataset"], train, p.epochs) / 1e15
    startup = max(c["startup_s"] for c in calibrations.values())
    plan.hours = (seconds + startup) / 3600.0
    plan.kj = None if joules is None else joules / 1000.0
    return plan


@dataclass
class Shared:
    """What sharing trunks saves over a sweep's runs alone (`experiments.trunk`)."""

    trunks: int = 0
    hours: float = 0.0          # board-hours not spent: the branches' first phases, less each trunk's
    kj: float | None = 0.0


def shared_savings(specs: list[dict[str, Any]], plans: list[RunPlan]) -> Shared:
    """Runs of one trunk id train their first phase once, as long as the longest of them: the others'
    first phases are saved (same shape, so the same cost per epoch)."""
    from experiments.trunk import trunk_id

    groups: dict[str, list[PhasePlan]] = {}
    for spec, plan in zip(specs, plans):
        tid = trunk_id(spec)
        if tid is not None and plan.phases and plan.phases[0].name == METHODS[spec["method"]].phases()[0].name:
            groups.setdefault(tid, []).append(plan.phases[0])
    out = Shared()
    for firsts in groups.values():
        if len(firsts) < 2:
            continue
        out.trunks += 1
        out.hours += sum(p.hours for p in firsts) - max(p.hours for p in firsts)
        kjs = [p.kj for p in firsts]
        out.kj = None if out.kj is None or None in kjs else out.kj + sum(kjs) - max(kjs)
    return out


def makespan_hours(hours: list[float], nodes: int) -> float:
    """Wall time of runs on `nodes` nodes, longest first onto the node free first (as a queue places them)."""
    free = [0.0] * max(1, nodes)
    for h in sorted(hours, reverse=True):
        free[free.index(min(free))] += h
    return max(free)
