"""`ebt plan`: the phase layout of each method, the estimate's rules, the calibration on the local target
and the cached calibrations behind `--dry-run`."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import torch

from analysis.flops import forward_flops
from experiments.earlybird import channel_mask
from experiments.methods import BASELINE, METHODS, Method
from experiments.models import default_cfg
from experiments.phases import OneShot, Train, pruned_cfg
from experiments.prune import prune
from harness import plan as pl
from harness.cli import main as ebt
from harness.config import expand

ROOT = Path(__file__).resolve().parents[1]
VGG16 = ROOT / "experiments" / "configs" / "table2" / "vgg16-cifar10.yaml"


def spec_of(**changes) -> dict:
    raw = dict(yaml.safe_load(VGG16.read_text()), **changes)
    raw.pop("sweep")
    return expand(raw)[0]


def layout(spec: dict) -> list[tuple]:
    at, _ = pl.eb_epoch(spec, [])
    return [(p.name, p.epochs, p.shape.bits, p.cfg == default_cfg("vgg", 16)) for p in pl.phases_of(spec, at)]


def test_phase_layouts_follow_the_methods():
    assert layout(spec_of(method="dense")) == [("train", 160, None, True)]
    # the ticket is assumed at 15% of 160 epochs; FF continues the schedule from there, pruned
    assert layout(spec_of(method="ebtrain-ff", prune_ratio=0.5)) == [("search", 24, None, True),
                                                                    ("retrain", 136, None, False)]
    assert layout(spec_of(method="ebtrain-reinit", prune_ratio=0.5, eb_draw_epoch=10)) == [
        ("search", 10, None, True), ("retrain", 160, None, False)]
    assert layout(spec_of(method="ebtrain-ll", prune_ratio=0.3)) == [("search", 24, 8, True), ("retrain", 136, 8, False)]
    # unstructured masks leave the architecture dense
    assert layout(spec_of(method="lt", prune_ratio=0.7)) == [("train", 160, None, True), ("retrain", 160, None, True)]
    pruned = pl.phases_of(spec_of(method="ns", prune_ratio=0.5))[-1].cfg
    assert pruned == default_cfg("vgg", 16, 0.5)


def test_eb_epoch_rules(tmp_path):
    ff = spec_of(method="ebtrain-ff", prune_ratio=0.5)
    assert pl.eb_epoch(ff, []) == (24, "assumed")
    assert pl.eb_epoch(dict(ff, epochs=16), []) == (5, "assumed")  # not before the queue of 5 masks is full
    assert pl.eb_epoch(dict(ff, eb_draw_epoch=7), []) == (7, "fixed")
    # ok records of the same search say when it drew its ticket; another ratio's do not count
    for i, (ratio, epoch) in enumerate([(0.5, 30), (0.5, 40), (0.5, 36), (0.7, 90)]):
        folder = tmp_path / "runs" / f"r{i}"
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps({
            "status": "ok", "config": dict(ff, prune_ratio=ratio),
            "eb": {"detected": True, "forced": False, "epoch": epoch}}))
    assert pl.eb_epoch(ff, pl.recorded_eb_epochs(tmp_path)) == (36, "records")


def calibration(step_s=2.0, eval_s=0.5, ckpt_s=1.0, watts=None, startup_s=3.0) -> dict:
    return {"train_step_s": step_s, "eval_step_s": eval_s, "checkpoint_s": ckpt_s, "mean_w": watts,
            "startup_s": startup_s}


def test_estimate_rule():
    dense = spec_of(method="dense", epochs=10)
    (shape,) = {p.shape for p in pl.phases_of(dense)}
    plan = pl.estimate(dense, {shape: calibration()})
    epoch_s = math.ceil(50000 / 256) * 2.0 + math.ceil(10000 / 256) * 0.5 + 1.0
    assert plan.hours == pytest.approx((10 * epoch_s + 3.0) / 3600) and plan.kj is None
    metered = pl.estimate(dense, {shape: calibration(watts=20.0)})
    assert metered.kj == pytest.approx(20.0 * 10 * epoch_s / 1000)
    # a pruned phase takes its FLOPs' share of the calibrated dense step
    ff = spec_of(method="ebtrain-ff", epochs=10, eb_draw_epoch=4, prune_ratio=0.5)
    ratio = (forward_flops({"arch": "vgg", "depth": 16, "num_classes": 10, "cfg": default_cfg("vgg", 16, 0.5)},
                           "cifar10") / forward_flops({"arch": "vgg", "depth": 16, "num_classes": 10,
                                                       "cfg": default_cfg("vgg", 16)}, "cifar10"))
    pruned_epoch_s = ratio * (epoch_s - 1.0) + 1.0
    assert pl.estimate(ff, {shape: calibration()}).hours == pytest.approx(
        (4 * epoch_s + 6 * pruned_epoch_s + 3.0) / 3600)


def test_wall_time_on_nodes():
    assert pl.makespan_hours([5, 4, 3, 3, 3], 1) == 18
    assert pl.makespan_hours([5, 4, 3, 3, 3], 2) == 10  # longest first: 5+3 | 4+3+3
    assert pl.makespan_hours([5, 4, 3, 3, 3], 3) == 7   # 5 | 4+3 | 3+3
    assert pl.makespan_hours([2.0], 8) == 2.0


@pytest.mark.slow
def test_calibrate_refuses_a_bad_request():
    done = subprocess.run([sys.executable, "-m", "experiments.calibrate", "{}"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "'shapes'" in done.stderr


@pytest.mark.slow
def test_plan_on_the_local_target_then_dry_run(tmp_path, capsys):
    """A real calibration on this machine (synthetic batches), then the same table from the cache."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(dict(arch="vgg", depth=11, width=0.125, dataset="digits", epochs=20,
                                       batch_size=32, device="cpu", meter="none",
                                       sweep={"method": ["dense", "ebtrain-ff"]})))
    results = tmp_path / "results"
    argv = ["plan", str(cfg), "--results", str(results), "--budget", "4"]
    assert ebt(argv + ["--dry-run"]) == 2  # nothing calibrated yet
    capsys.readouterr()
    assert ebt(argv) == 0
    table = capsys.readouterr().out
    rows = {line.split()[1]: line.split() for line in table.splitlines() if line.startswith("vgg11-")}
    assert set(rows) == {"dense", "ebtrain-ff"}
    assert float(rows["dense"][4]) > float(rows["ebtrain-ff"][4]) > 0  # hours: the pruned run is cheaper
    assert rows["dense"][5] == "null" and "kJ null (no meter)" in table  # no meter: no energy
    assert re.search(r"wall time alone on 1 node: [0-9.e-]+ h", table)
    (cached,) = (results / pl.CALIBRATIONS).iterdir()  # one shape: the dense VGG11 in FP32
    entry = json.loads(cached.read_text())
    assert entry["train_step_s"] > 0 and entry["target"] == "local" and entry["shape"]["depth"] == 11
    assert ebt(argv + ["--dry-run", "--nodes", "2"]) == 0
    again = capsys.readouterr().out
    assert again.splitlines()[:3] == table.splitlines()[:3] and "wall time alone on 2 nodes" in again


class RandomChannelPrune(OneShot):
    """A throwaway method's phase, written as CONTRIBUTING says: random channels pruned at the run's ratio."""

    name = "random-prune"
    own_keys = ("prune_ratio",)

    def planned_cfg(self, spec, cfg):
        return pruned_cfg(spec)

    def transform(self, run):
        mask = torch.rand(len(channel_mask(run.model, 0.0))) >= run.spec["prune_ratio"]
        return prune(run.model, mask)


class Forgetful(OneShot):
    """A one-shot phase that does not say the shape it leaves."""

    name = "forgetful"

    def transform(self, run):
        return run.model


def _full(run):
    return run.spec["epochs"]


def write_calibrations(results: Path, specs: list[dict], **numbers) -> None:
    for shape in {p.shape for spec in specs for p in pl.phases_of(spec)}:
        path = pl.calibration_path(results, "local", shape)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(calibration(**numbers)))


def plan_rows(out: str) -> dict[str, list[str]]:
    return {line.split()[1]: line.split() for line in out.splitlines() if line.startswith("vgg16-")}


def test_a_registered_method_is_planned_at_the_width_its_phases_leave(tmp_path, monkeypatch, capsys, caplog):
    phases = lambda: [Train("train", epochs=_full), RandomChannelPrune(), Train("retrain", epochs=_full)]
    monkeypatch.setitem(METHODS, "random", Method("random", "Random", BASELINE, phases))
    spec = spec_of(method="random", prune_ratio=0.5, epochs=10)
    assert [p.cfg for p in pl.phases_of(spec)] == [default_cfg("vgg", 16), default_cfg("vgg", 16, 0.5)]
    cfg = tmp_path / "random.yaml"
    cfg.write_text(yaml.safe_dump(dict(arch="vgg", depth=16, dataset="cifar10", epochs=10, meter="none",
                                       prune_ratio=0.5, sweep={"method": ["random", "dense"]})))
    results = tmp_path / "results"
    write_calibrations(results, [spec])
    assert ebt(["plan", str(cfg), "--results", str(results), "--dry-run"]) == 0
    rows = plan_rows(capsys.readouterr().out)
    dense = float(rows["dense"][3])
    model = {"arch": "vgg", "depth": 16, "num_classes": 10}
    ratio = forward_flops(dict(model, cfg=default_cfg("vgg", 16, 0.5)), "cifar10") / forward_flops(
        dict(model, cfg=default_cfg("vgg", 16)), "cifar10")
    assert float(rows["random"][3]) == pytest.approx(dense * (1 + ratio), rel=1e-2)  # PFLOPs: dense + pruned

    monkeypatch.setitem(METHODS, "random", Method("random", "Random", BASELINE, lambda: [Forgetful()]))
    assert ebt(["plan", str(cfg), "--results", str(results), "--dry-run"]) == 2
    assert "Forgetful must say the model shape it leaves" in caplog.text


def test_emulated_low_precision_costs_at_least_its_fp32_time():
    ll = spec_of(method="ebtrain-ll", epochs=10, eb_draw_epoch=4, prune_ratio=0.5)
    ff = dict(ll, method="ebtrain-ff")
    shapes = pl.shapes_for([ll])
    assert {s.bits for s in shapes} == {8, None}  # the 8-bit shape and its FP32 twin are calibrated
    fp32 = {s: calibration(step_s=2.0, watts=10.0) for s in shapes if s.bits is None}
    cheap8 = {s: calibration(step_s=1.0, watts=5.0) for s in shapes if s.bits}
    dear8 = {s: calibration(step_s=3.0, watts=5.0) for s in shapes if s.bits}
    base = pl.estimate(ff, fp32)
    floor = pl.estimate(ll, {**fp32, **cheap8})
    assert floor.hours == pytest.approx(base.hours) and floor.kj == pytest.approx(base.kj)
    assert pl.estimate(ll, {**fp32, **dear8}).hours > base.hours


def test_numbers_are_printed_for_people():
    assert [pl.human(x) for x in (1070.4, 10612.0, 14.43, 9.6, 0.031234, 0.0)] == [
        "1,070", "10,600", "14.4", "9.6", "0.0312", "0"]


def test_dry_run_without_a_calibration_says_how_to_make_one(tmp_path, caplog):
    cfg = tmp_path / "dense.yaml"
    cfg.write_text(yaml.safe_dump(dict(arch="vgg", depth=11, dataset="digits", method="dense", epochs=2,
                                       meter="none")))
    assert ebt(["plan", str(cfg), "--results", str(tmp_path / "results"), "--dry-run"]) == 2
    assert f"make one with `ebt plan {cfg} --target local`" in caplog.text
    assert not (tmp_path / "results").exists()  # nothing half-made


def test_shared_trunks_save_all_but_the_longest_first_phase(tmp_path, capsys):
    """Fig 1 in little: 3 ratios x draws at 2, 4, 8, 16 of 16 epochs share one 16-epoch search."""
    specs = [spec_of(method="ebtrain-ff", epochs=16, prune_ratio=p, eb_draw_epoch=d)
             for p in (0.3, 0.5, 0.7) for d in (2, 4, 8, 16)] + [spec_of(method="dense", epochs=16)]
    cal = {s: calibration(watts=10.0) for s in pl.shapes_for(specs)}
    plans = [pl.estimate(s, cal) for s in specs]
    epoch_h = plans[-1].phases[0].hours / 16  # a dense epoch
    saved = pl.shared_savings(specs, plans)
    assert saved.trunks == 1 and saved.hours == pytest.approx((3 * (2 + 4 + 8 + 16) - 16) * epoch_h)
    assert saved.kj == pytest.approx(10.0 * saved.hours * 3600 / 1000)
    # another seed is another search: nothing shared between the two
    other = [dict(specs[0], seed=1, run_id="x")]
    assert pl.shared_savings([specs[0]] + other, [plans[0], pl.estimate(other[0], cal)]).trunks == 0
    # the CLI prints both, per config and for several configs together
    cfg = tmp_path / "fig1.yaml"
    cfg.write_text(yaml.safe_dump(dict(arch="vgg", depth=16, dataset="cifar10", epochs=16, meter="none",
                                       sweep={"prune_ratio": [0.3, 0.5, 0.7], "eb_draw_epoch": [2, 4, 8, 16]})))
    results = tmp_path / "results"
    write_calibrations(results, specs)
    assert ebt(["plan", str(cfg), str(cfg), "--results", str(results), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"fig1.yaml: 12 runs, [0-9.,]+ board-hours alone, [0-9.,]+ shared \(1 trunk, \d+% of alone\)",
                     out)
    assert "all 2 configs: 12 runs" in out
