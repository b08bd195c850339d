"""The method registry, and every Table 2 method end to end through the device runner on the offline
dataset, with its record; a method registered only in the registry runs the same way."""
import pytest
import torch

from analysis.flops import training_flops
from experiments import checkpoint
from experiments.methods import BASELINE, EB, FLOPS_DENSE, FLOPS_PRUNED, METHODS, REFERENCE, methods_in_group
from experiments.spec import SpecError
from experiments.train import TrainLoop
from harness.record import build_record
from tests.method_runs import load_model, phase_ends, run_method, small_spec, toy_method

PHASES = {
    "ns": ["train", "prune", "finetune"],
    "lt": ["init", "train", "prune", "retrain"],
    "snip": ["prune", "train"],
    "thinet": ["train", "prune", "finetune"],
    "ebtrain-lf": ["search", "prune", "retrain"],
    "ebtrain-ll": ["search", "prune", "retrain"],
}


@pytest.mark.parametrize("method", sorted(PHASES))
def test_method_runs_end_to_end_with_its_phases_and_a_record(tmp_path, method):
    spec = small_spec(method)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0
    assert [e["phase"] for e in events if e["event"] == "phase_start"] == PHASES[method]
    assert events[-1]["event"] == "run_end" and events[-1]["status"] == "ok"
    record = build_record(out)
    assert record["status"] == "ok" and record["method"] == method
    assert [p["name"] for p in record["phases"]] == PHASES[method]
    assert record["totals"]["flops"] > 0
    # no meter: no energy, measured or estimated, is invented
    assert record["totals"]["energy_j"] is None and record["totals"]["estimated_energy_j"] is None
    trained = sum(p["epochs"] for p in record["phases"])
    assert trained == {"lt": 4, "ns": 4, "thinet": 4}.get(method, 2)
    # which models the accuracies evaluate: LL's best is its live 8-bit model, every other method's FP32
    models = {k: record["accuracy"][k] for k in ("best_model", "final_model")}
    if method == "ebtrain-ll":
        assert models["best_model"] == "bfp8 live" and models["final_model"] in ("fp32 swa", "bfp8 weights, fp32 eval")
    else:
        assert models == {"best_model": "fp32", "final_model": "fp32"}


@pytest.mark.parametrize("method", ["lt", "snip"])
def test_unstructured_methods_count_dense_flops_and_say_so(tmp_path, method):
    rc, out, events = run_method(tmp_path, small_spec(method))
    assert rc == 0
    record = build_record(out)
    dense_model = phase_ends(events)["train"]["model"]
    per_epoch = training_flops(dense_model, "digits", record["config"]["train_subset"], 1)
    masked = [p for p in record["phases"] if p["flops_note"]]
    assert [p["name"] for p in masked] == (["retrain"] if method == "lt" else ["train"])
    assert "dense" in masked[0]["flops_note"]
    assert masked[0]["flops"] == pytest.approx(per_epoch * masked[0]["epochs"])
    # LT pays two dense schedules, SNIP one, whatever the ratio (Table 2)
    assert record["totals"]["flops"] == pytest.approx(per_epoch * (4 if method == "lt" else 2))
    # the architecture keeps every parameter; the mask zeroes about p of the masked weights
    params = record["params"]
    assert params["final"] == params["dense"]
    masked_weights = sum(m.numel() for m in checkpoint.load(out / "checkpoints" / "last.pt")
                         ["state"]["weight_masks"].values())
    removed = params["final"] - params["nonzero"]
    assert removed == pytest.approx(record["prune_ratio"] * masked_weights, rel=0.02)


def test_resume_mid_method_keeps_the_weight_mask(tmp_path, monkeypatch):
    spec = small_spec("snip", epochs=3)
    real = TrainLoop.train_epoch
    calls = []

    def crash_on_second_epoch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TrainLoop, "train_epoch", crash_on_second_epoch)
    rc, out, _ = run_method(tmp_path, spec)
    assert rc == 1
    before = checkpoint.load(out / "checkpoints" / "last.pt")
    assert before["phase_index"] == 1 and before["phase_epoch"] == 1
    masks = before["state"]["weight_masks"]
    monkeypatch.setattr(TrainLoop, "train_epoch", real)
    rc, out, events = run_method(tmp_path, spec)
    assert rc == 0 and any(e["event"] == "resume" for e in events)
    model, after = load_model(out / "checkpoints" / "last.pt")
    assert sorted(after["state"]["weight_masks"]) == sorted(masks)
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        assert torch.equal(after["state"]["weight_masks"][name], mask)
        assert (params[name][~mask] == 0).all()
    assert len([e for e in events if e["event"] == "epoch" and e["phase"] == "train"]) == 3


def test_registry_groups_labels_and_rules():
    assert [m.name for m in methods_in_group(REFERENCE)] == ["dense"]
    assert len({m.display for m in METHODS.values()}) == len(METHODS)
    assert [m.display for m in methods_in_group(EB)] == [
        "EB Train (re-init)", "EB Train (FF)", "EB Train (LF)", "EB Train (LL)"]
    assert {m.table3_label for m in METHODS.values()} == {None, "Unpruned", "NS", "ThiNet", "EB Train"}
    # dense FLOPs exactly for the methods that train under an unstructured mask
    assert {m.name for m in METHODS.values() if m.flops_rule == FLOPS_DENSE} == {"lt", "snip"}
    assert "dense" in METHODS["lt"].flops_note and METHODS["ns"].flops_rule == FLOPS_PRUNED
    spec = small_spec("ebtrain-ll", lp_bits=6)
    assert METHODS["ebtrain-ll"].precisions(spec) == {"search": "bfp6", "retrain": "bfp6"}
    assert METHODS["ebtrain-lf"].precisions(spec) == {"search": "bfp6", "retrain": "fp32"}
    with pytest.raises(SpecError, match="'method' = 'nope'.*ebtrain-ff"):
        small_spec("nope")
    with pytest.raises(SpecError, match="prune_ratio"):
        small_spec("ns", prune_ratio=0.0)


@pytest.mark.slow
def test_a_method_registered_only_in_the_registry_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setitem(METHODS, "toy", toy_method())
    assert "toy" in [m.name for m in methods_in_group(BASELINE)]
    rc, out, events = run_method(tmp_path, small_spec("toy"))
    assert rc == 0 and events[-1]["status"] == "ok"
    ends = phase_ends(events)
    assert list(ends) == ["train", "shrink", "prune", "retrain"]
    assert ends["shrink"]["info"] == {"shrunk": True, "precision": "fp32", "flops_rule": FLOPS_PRUNED,
                                      "flops_note": None}
    record = build_record(out)
    assert record["status"] == "ok" and record["method"] == "toy"
    assert [p["precision"] for p in record["phases"]] == ["fp32"] * 4
    assert record["params"]["final"] < record["params"]["dense"]
