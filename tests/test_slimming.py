"""Network slimming: BN-gamma L1 training makes the gammas sparser than plain dense training."""
from experiments.earlybird import bn_gammas
from experiments.phases import Train
from experiments.slimming import SlimmingTrain, strength
from tests.method_runs import live_run, phase_ends, run_method, small_spec


def test_strength_is_the_slimming_papers_per_arch_unless_set():
    assert strength({"arch": "vgg", "ns_sparsity": None}) == 1e-4
    assert strength({"arch": "preresnet", "ns_sparsity": None}) == 1e-5
    assert strength({"arch": "preresnet", "ns_sparsity": 3e-4}) == 3e-4


def test_ns_gammas_are_sparser_than_dense_training(tmp_path):
    # a strong L1 so that two tiny epochs show it; same seed, so the same init and batches
    spec = small_spec("ns", ns_sparsity=0.05, train_subset=256, lr=0.1)
    (tmp_path / "ns").mkdir()
    (tmp_path / "dense").mkdir()
    slim, dense = live_run(tmp_path / "ns", spec), live_run(tmp_path / "dense", spec)
    SlimmingTrain().run(slim, 0)
    Train("train", epochs=lambda r: r.spec["epochs"]).run(dense, 0)
    g_slim, g_dense = bn_gammas(slim.model), bn_gammas(dense.model)
    assert g_slim.sum() < 0.8 * g_dense.sum()
    assert slim.phase_info["l1_strength"] == 0.05


def test_ns_prunes_the_trained_model_globally_and_fine_tunes_the_schedule(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("ns", prune_ratio=0.5))
    assert rc == 0
    ends = phase_ends(events)
    assert ends["prune"]["info"]["params_after"] < ends["prune"]["info"]["params_before"]
    assert ends["prune"]["info"]["reinit"] is False
    fine = [e for e in events if e["event"] == "epoch" and e["phase"] == "finetune"]
    # the default budget is the whole schedule again, from its first epoch's lr
    assert [e["global_epoch"] for e in fine] == [1, 2] and fine[0]["lr"] == 0.1
    assert ends["finetune"]["model"]["cfg"] == events[-1]["model"]["cfg"]


def test_short_finetune_budget_takes_the_schedule_tail(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("ns", epochs=4, finetune_epochs=1))
    assert rc == 0
    fine = [e for e in events if e["event"] == "epoch" and e["phase"] == "finetune"]
    assert [e["global_epoch"] for e in fine] == [4] and abs(fine[0]["lr"] - 0.001) < 1e-12
