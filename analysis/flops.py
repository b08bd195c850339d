"""FLOPs accounting, as the paper counts it.

Forward FLOPs of the actual (possibly pruned) architecture come from torch's own counter
(`torch.utils.flop_counter.FlopCounterMode`, 2 FLOPs per multiply-add, convolutions and matrix products),
on one input of the dataset's size. Training FLOPs = 3 x forward x samples x epochs: the backward pass
costs about twice the forward one, and this rule reproduces Table 2's dense figures (`benchmarks/flops_rule.py`
prints the comparison).
The device records only the channel configuration of each phase's model; the laptop counts.

Two conventions of Table 2 follow from counting the architecture: unstructured masks (LT, SNIP) leave the
architecture dense, so their phases count dense FLOPs (the record's phase `flops_note` says so), and
emulated 8-bit phases (EB Train LF/LL) count the same FLOPs as FP32 ones (Sohoni et al. 2019, as the paper).
"""
from __future__ import annotations

from functools import lru_cache

import torch

from experiments.datasets import DATASETS
from experiments.models import build

TRAIN_FACTOR = 3


@lru_cache(maxsize=256)
def _forward_flops(arch: str, depth: int, num_classes: int, cfg: tuple, size: int) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    model = build(arch, depth, num_classes, cfg=list(cfg)).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return int(counter.get_total_flops())


def forward_flops(model: dict, dataset: str) -> int:
    """FLOPs of one forward pass of one sample. `model` is the runner's description
    `{arch, depth, num_classes, cfg}`."""
    return _forward_flops(model["arch"], int(model["depth"]), int(model["num_classes"]),
                          tuple(model["cfg"]), DATASETS[dataset].input_size)


def training_flops(model: dict, dataset: str, samples: int, epochs: int) -> float:
    return float(TRAIN_FACTOR * forward_flops(model, dataset) * samples * epochs)
