#!/usr/bin/env python3
"""Check the FLOPs rule of `analysis.flops` against Table 2's printed costs.

Rule: training FLOPs = 3 x forward FLOPs (torch's FlopCounterMode, 2 per multiply-add) x samples x epochs.
Printed, in PFLOPs, against the paper (CIFAR-10, 50,000 training images, 160 epochs):

- dense: VGG16 vs 15.1 and PreResNet-101 vs 7.40 (Table 2's SNIP rows = 160 dense epochs); these must be
  within 5% (the exit status says whether they are);
- LT (one-shot) = two dense schedules (dense FLOPs, unstructured masks) vs 30.3 and 14.9;
- ThiNet = 160 dense epochs + a 160-epoch fine-tune of the network pruned by p in every cuttable layer
  (ThiNet's per-layer rate) vs 22.6 / 19.0 / 16.6 (VGG16) and 13.2 / 10.6 / 8.65 (PreResNet-101): the
  evidence for the fine-tune budget in `experiments.thinet`.

    python3 benchmarks/flops_rule.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analysis.flops import training_flops  # noqa: E402
from experiments.models import default_cfg  # noqa: E402

SAMPLES, EPOCHS, TOLERANCE = 50000, 160, 0.05
PAPER_DENSE = {"vgg16": 15.1, "preresnet101": 7.40}
PAPER_LT = {"vgg16": 30.3, "preresnet101": 14.9}
PAPER_THINET = {"vgg16": {0.3: 22.6, 0.5: 19.0, 0.7: 16.6}, "preresnet101": {0.3: 13.2, 0.5: 10.6, 0.7: 8.65}}
MODELS = {"vgg16": ("vgg", 16), "preresnet101": ("preresnet", 101)}


def _keep(c, p):
    return max(1, c - int(c * p))


def thinet_cfg(arch, depth, p):
    """The cfg ThiNet leaves: every VGG conv, and each PreResNet bottleneck's conv1/conv2, keep 1 - p."""
    cfg = default_cfg(arch, depth)
    if arch == "vgg":
        return [v if v == "M" else _keep(v, p) for v in cfg]
    for i in range(1, len(cfg) - 1):
        if (i - 1) % 3 != 0:  # [selected, conv1 out, conv2 out] per block: the stream entry stays
            cfg[i] = _keep(cfg[i], p)
    return cfg


def pflops(arch, depth, cfg, epochs=EPOCHS):
    desc = {"arch": arch, "depth": depth, "num_classes": 10, "cfg": cfg}
    return training_flops(desc, "cifar10", SAMPLES, epochs) / 1e15


def main():
    ok = True
    print("%-14s %-22s %9s %9s %8s" % ("model", "what", "ours (P)", "paper (P)", "diff"))
    for name, (arch, depth) in MODELS.items():
        dense = pflops(arch, depth, default_cfg(arch, depth))
        rows = [("dense 160 epochs", dense, PAPER_DENSE[name]), ("LT one-shot", 2 * dense, PAPER_LT[name])]
        for p, paper in sorted(PAPER_THINET[name].items()):
            rows.append(("ThiNet p=%.1f" % p, dense + pflops(arch, depth, thinet_cfg(arch, depth, p)), paper))
        for what, ours, paper in rows:
            diff = ours / paper - 1.0
            print("%-14s %-22s %9.2f %9.2f %+7.1f%%" % (name, what, ours, paper, 100 * diff))
        ok = ok and abs(dense / PAPER_DENSE[name] - 1.0) <= TOLERANCE
    print("dense figures within %d%% of the paper: %s" % (100 * TOLERANCE, "yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
