"""Unstructured (weight-level) sparsity: masks over conv/linear weights, kept fixed while training.

Shared by the lottery ticket (`experiments.lottery`) and SNIP (`experiments.snip`). A mask is a dict
{parameter name: bool tensor of the weight's shape} (True = kept). It lives in
`run.state[STATE_WEIGHT_MASKS]`, which every checkpoint saves, so a resumed run trains under the very same
mask.

Unstructured zeros save no dense compute: the pruned weights are still multiplied (by zero) by every
dense kernel, so these methods' FLOPs are counted dense, as Table 2 does (LT and SNIP cost the same at
every ratio). `MaskedTrain` is the phase whose `flops_rule` says so; the run record carries it.

torch is imported in the functions that use it, so the method registry loads without it.
"""
from .phases import FLOPS_DENSE, STATE_WEIGHT_MASKS, Train


def prunable_weights(model):
    """(name, weight) of every conv and linear layer: the weights these methods prune (open_lth's
    default prunable set, classifier included; BN and biases are left dense)."""
    import torch.nn as nn

    names = {m: n for n, m in model.named_modules()}
    return [(names[m] + ".weight", m.weight) for m in model.modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))]


def global_top_masks(scores, ratio):
    """Keep the (1 - ratio) fraction of entries with the largest score across every tensor of `scores`
    ({name: tensor}); one global threshold, ties broken by position so exactly that many are kept."""
    import torch

    flat = torch.cat([s.detach().flatten().float().cpu() for s in scores.values()])
    keep = flat.numel() - int(flat.numel() * ratio)
    kept = torch.zeros(flat.numel(), dtype=torch.bool)
    kept[torch.topk(flat, keep, sorted=False)[1]] = True
    masks, start = {}, 0
    for name, s in scores.items():
        masks[name] = kept[start:start + s.numel()].view_as(s)
        start += s.numel()
    return masks


def apply_masks(model, masks):
    """Zero the pruned weights of `model` in place."""
    import torch

    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].masked_fill_(~mask.to(params[name].device), 0.0)


def density(masks):
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return kept, total


def keep_masks(run, masks):
    """Keep `masks` as the run's weight mask and say so in the phase info (LT, SNIP and their training)."""
    run.state[STATE_WEIGHT_MASKS] = masks
    kept, total = density(masks)
    run.phase_info.update({"ratio": run.spec["prune_ratio"], "sparsity": "unstructured", "weights_kept": kept,
                           "weights_total": total})


class WeightMask:
    """Train-loop callback: re-zero the pruned weights after every optimiser step, so momentum and
    weight decay never bring them back (Frankle & Carbin 2019; Lee et al. 2019 train with the mask fixed)."""

    def __init__(self, masks):
        self.masks = masks

    def after_step(self, model):
        apply_masks(model, self.masks)


class MaskedTrain(Train):
    """Train under the fixed weight mask in `run.state[STATE_WEIGHT_MASKS]`; FLOPs count dense (see above)."""

    flops_rule = FLOPS_DENSE

    def callbacks(self, run):
        # Masks on the training device: re-zeroing after every step must not copy them from the host.
        masks = {n: m.to(run.loop.device) for n, m in run.state[STATE_WEIGHT_MASKS].items()}
        return super().callbacks(run) + [WeightMask(masks)]

    def execute(self, run, done):
        masks = run.state[STATE_WEIGHT_MASKS]
        apply_masks(run.model, masks)
        keep_masks(run, masks)
        super().execute(run, done)
