"""Checkpoints written atomically (`hw.fileio`) and loaded safely where torch allows it."""
import inspect

import torch

from hw.fileio import atomic_path

# torch >= 1.13 can refuse to unpickle anything but tensors and plain containers; older torch (a TX2's
# 1.8-1.10) has no such option.
_HAS_WEIGHTS_ONLY = "weights_only" in inspect.signature(torch.load).parameters


def save(obj, path):
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load(path, map_location="cpu"):
    if _HAS_WEIGHTS_ONLY:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    return torch.load(str(path), map_location=map_location)
