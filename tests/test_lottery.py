"""One-shot lottery ticket: global magnitude mask of the trained weights, survivors rewound to theta_0."""
import torch

from experiments import checkpoint
from experiments.lottery import PruneAndRewind, SaveInit, init_path
from experiments.phases import Train
from experiments.unstructured import global_top_masks, prunable_weights
from tests.method_runs import live_run, small_spec


def test_rewound_weights_equal_the_initial_ones_on_kept_positions(tmp_path):
    spec = small_spec("lt", prune_ratio=0.7)
    run = live_run(tmp_path, spec)
    SaveInit().run(run, 0)
    Train("train", epochs=lambda r: r.spec["epochs"]).run(run, 0)
    trained = dict((n, w.detach().clone()) for n, w in prunable_weights(run.model))
    PruneAndRewind().run(run, 0)
    init = checkpoint.load(init_path(run))["model_state"]
    masks = run.state["weight_masks"]
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    assert kept == total - int(total * 0.7)
    # the mask is global magnitude: every kept trained weight is at least as large as every pruned one
    kept_min = min(trained[n][m].abs().min() for n, m in masks.items() if m.any())
    pruned_max = max(trained[n][~m].abs().max() for n, m in masks.items() if (~m).any())
    assert kept_min >= pruned_max
    state = run.model.state_dict()
    for name, mask in masks.items():
        assert torch.equal(state[name][mask], init[name][mask])
        assert (state[name][~mask] == 0).all()
    # everything else (BN, biases, running statistics) is rewound too
    for name, value in init.items():
        if name not in masks:
            assert torch.equal(state[name], value), name


def test_global_top_masks_keeps_exactly_the_largest_scores():
    scores = {"a": torch.tensor([[5.0, 1.0], [3.0, 0.5]]), "b": torch.tensor([4.0, 2.0, 0.1])}
    masks = global_top_masks(scores, 0.5)  # 7 weights: int(3.5) = 3 pruned, the 4 largest kept
    assert masks["a"].tolist() == [[True, False], [True, False]]
    assert masks["b"].tolist() == [True, True, False]
