"""SNIP: single-shot network pruning by connection sensitivity (Lee et al., ICLR 2019), a Table 2 baseline.

At initialisation, the sensitivity of connection j is |dL/dc_j| at c = 1 for a multiplicative gate c on
the weight, which equals |g_j * w_j|. It is computed on `snip_batches` mini-batches (the paper: one batch,
128 images on CIFAR; here the run's batch size) with gradients summed over the batches, the top (1 - p)
conv/linear weights are kept globally, and the network trains the whole schedule with that mask fixed
(`experiments.unstructured.MaskedTrain`). One dense schedule: Table 2's SNIP cost is exactly half of LT's.
"""
import copy

from .phases import OneShot, sample_batches
from .unstructured import apply_masks, global_top_masks, keep_masks, prunable_weights


def connection_sensitivity(model, batches, device):
    """{weight name: |g * w|} of every conv/linear weight, g summed over `batches` of (x, y).

    Computed on a copy in train mode (batch statistics, as at the first training step), so the model to
    be trained keeps its initial weights and BN buffers untouched.
    """
    import torch.nn.functional as F

    probe = copy.deepcopy(model).train()
    weights = prunable_weights(probe)
    probe.zero_grad()
    for x, y in batches:
        loss = F.cross_entropy(probe(x.to(device)), y.to(device))
        loss.backward()
    return {name: (w.grad * w).detach().abs() for name, w in weights}


class SnipPrune(OneShot):
    name = "prune"
    own_keys = ("prune_ratio", "snip_batches")

    def planned_cfg(self, spec, cfg):
        return cfg  # unstructured: the architecture stays dense

    def transform(self, run):
        spec = run.spec
        batches = []
        for batch in sample_batches(run):
            batches.append(batch)
            if len(batches) == spec["snip_batches"]:
                break
        scores = connection_sensitivity(run.model, batches, run.loop.device)
        masks = global_top_masks(scores, spec["prune_ratio"])
        apply_masks(run.model, masks)
        keep_masks(run, masks)
        run.phase_info.update({"batches": len(batches), "images": sum(int(b[1].numel()) for b in batches)})
        return run.model
