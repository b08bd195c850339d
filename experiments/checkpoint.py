"""Checkpoints written atomically (temp file + rename) and loaded safely where torch allows it."""
import inspect
import os

import torch

# torch >= 1.13 can refuse to unpickle anything but tensors and plain containers; older torch (a TX2's
# 1.8-1.10) has no such option.
_HAS_WEIGHTS_ONLY = "weights_only" in inspect.signature(torch.load).parameters


def save(obj, path):
    path = str(path)
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path, map_location="cpu"):
    if _HAS_WEIGHTS_ONLY:
        return torch.load(str(path), map_location=map_location, weights_only=True)
    return torch.load(str(path), map_location=map_location)
