"""SNIP: the mask comes from |g * w| at initialisation and stays fixed while training."""
import torch

from experiments import data
from experiments.snip import SnipPrune, connection_sensitivity
from experiments.train import seed_everything
from experiments.unstructured import prunable_weights
from tests.method_runs import live_run, load_model, run_method, small_spec


def test_mask_is_top_connection_sensitivity_at_init_and_weights_stay_untouched(tmp_path):
    run = live_run(tmp_path, small_spec("snip", prune_ratio=0.6))
    before = dict((n, w.detach().clone()) for n, w in prunable_weights(run.model))
    bn_before = [t.clone() for n, t in run.model.state_dict().items() if "running" in n]
    # the batch the phase draws: the first of its seeded loader; scored on the initial model
    seed_everything(run.epoch_seed(0))
    batch = next(iter(data.train_loader(run.spec, run.loop.train_set, run.epoch_seed(0))))
    scores = connection_sensitivity(run.model, [batch], run.loop.device)
    SnipPrune().run(run, 0)
    masks = run.state["weight_masks"]
    kept_min = min(scores[n][m].min() for n, m in masks.items() if m.any())
    pruned_max = max(scores[n][~m].max() for n, m in masks.items() if (~m).any())
    assert kept_min >= pruned_max
    weights = dict(prunable_weights(run.model))
    for name, mask in masks.items():
        assert torch.equal(weights[name][mask], before[name][mask])  # still the initial weights
        assert (weights[name][~mask] == 0).all()
    # the saliency pass ran on a copy: BN statistics are untouched
    bn_after = [t for n, t in run.model.state_dict().items() if "running" in n]
    assert all(torch.equal(a, b) for a, b in zip(bn_before, bn_after))


def test_masked_weights_stay_exactly_zero_through_training(tmp_path):
    rc, out, events = run_method(tmp_path, small_spec("snip", prune_ratio=0.5, epochs=3))
    assert rc == 0
    model, ckpt = load_model(out / "checkpoints" / "last.pt")
    masks = ckpt["state"]["weight_masks"]
    params = dict(model.named_parameters())
    assert set(masks) == set(n for n, _ in prunable_weights(model))
    for name, mask in masks.items():
        assert (params[name][~mask] == 0).all()
        assert (params[name][mask] != 0).float().mean() > 0.99  # the kept ones trained
    info = [e for e in events if e["event"] == "phase_end" and e["phase"] == "prune"][0]["info"]
    assert info["batches"] == 1 and info["weights_kept"] == info["weights_total"] - int(info["weights_total"] * 0.5)
