"""The paper's names for the suite's (arch, depth), datasets and methods, and the paper's row order."""
from __future__ import annotations

from typing import Optional

DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet"}

# Table 2's row order; `dense` is the suite's unpruned reference (Table 3 "Unpruned", Fig 1's dashed line).
METHOD_NAMES = {
    "dense": "Unpruned",
    "lt": "LT (one-shot)",
    "snip": "SNIP",
    "ns": "NS",
    "thinet": "ThiNet",
    "ebtrain-reinit": "EB Train (re-init)",
    "ebtrain-ff": "EB Train (FF)",
    "ebtrain-lf": "EB Train (LF)",
    "ebtrain-ll": "EB Train (LL)",
}
METHOD_ORDER = list(METHOD_NAMES.values())
BASELINES = ["LT (one-shot)", "SNIP", "NS", "ThiNet"]
EB_VARIANTS = ["EB Train (re-init)", "EB Train (FF)", "EB Train (LF)", "EB Train (LL)"]

# Table 3 has a single EB row: the default FP32 variant.
TABLE3_METHOD = {"Unpruned": "Unpruned", "NS": "NS", "ThiNet": "ThiNet", "EB Train (FF)": "EB Train"}


def model_name(arch: str, depth: Optional[int]) -> str:
    """VGG16, PreResNet101, ResNet18 ... (the paper's spelling; other depths follow the same pattern)."""
    stem = {"vgg": "VGG", "preresnet": "PreResNet", "resnet": "ResNet"}.get(str(arch).lower(), str(arch))
    return f"{stem}{'' if depth is None else int(depth)}"


def dataset_name(dataset: str) -> str:
    """The paper's dataset name; datasets the paper lacks (e.g. the offline 'digits') keep their own name."""
    return DATASET_NAMES.get(str(dataset).lower(), str(dataset))


def method_name(method: str) -> str:
    return METHOD_NAMES.get(str(method).lower(), str(method))
