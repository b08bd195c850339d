"""Lottery ticket, one-shot (Frankle & Carbin, ICLR 2019), the Table 2 baseline "LT (one-shot)".

Phases: `init` saves the initial weights theta_0; `train` trains the dense network for the whole schedule;
`prune` keeps the (1 - p) largest-magnitude conv/linear weights globally (unstructured) and rewinds every
parameter and BN buffer to theta_0, the pruned weights set to zero; `retrain` trains the whole schedule
again with the mask fixed. This follows open_lth's `lottery` branch with one pruning level (sparse_global
pruning, rewinding to iteration 0). The cost is two dense schedules whatever p is (Table 2: 30.3 PFLOPs for
VGG16 = 2 x 15.1; `experiments.unstructured` says why FLOPs are dense).

theta_0 goes to `paths.initial_weights` rather than into `run.state`: the state is saved with every epoch's
checkpoint, and a copy of the whole model in each would double the checkpoint on a TX2's storage.
"""
import os

from . import paths
from .phases import OneShot
from .unstructured import apply_masks, global_top_masks, keep_masks, prunable_weights


def init_path(run):
    return paths.initial_weights(run.run_dir)


class SaveInit(OneShot):
    """Save the untrained model's state (theta_0) for the later rewind."""

    name = "init"

    def planned_cfg(self, spec, cfg):
        return cfg

    def transform(self, run):
        from . import checkpoint

        path = init_path(run)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        checkpoint.save({"model_state": run.model.state_dict()}, path)
        run.phase_info["init"] = os.path.relpath(path, run.run_dir)
        return run.model


def magnitude_masks(model, ratio):
    """Global magnitude pruning: the `ratio` smallest |w| of all conv/linear weights pruned."""
    return global_top_masks({n: w.detach().abs() for n, w in prunable_weights(model)}, ratio)


class PruneAndRewind(OneShot):
    """Mask by the trained weights' magnitudes, rewind to theta_0, zero the pruned weights."""

    name = "prune"
    own_keys = ("prune_ratio",)

    def planned_cfg(self, spec, cfg):
        return cfg  # unstructured: the architecture stays dense

    def transform(self, run):
        from . import checkpoint

        masks = magnitude_masks(run.model, run.spec["prune_ratio"])
        run.model.load_state_dict(checkpoint.load(init_path(run))["model_state"])
        apply_masks(run.model, masks)
        keep_masks(run, masks)
        run.phase_info["rewind"] = "init"
        return run.model
