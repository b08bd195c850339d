"""The one train loop every method shares.

SGD with momentum and weight decay, a step learning-rate schedule over the run's whole epoch budget,
top-1/top-5 evaluation weighted by samples (the official code averages per-batch accuracies, which
mis-weights the last batch). Everything method-specific comes in as callbacks with optional methods:

- ``after_backward(model)``: change gradients before the step (BN L1 sparsity, quantised gradients);
- ``after_step(model)``: change weights after the step (fixed weight masks, quantised weights).

Each epoch is seeded from (seed, phase, epoch) so that a run resumed from a checkpoint sees the same
batches and augmentation as one that never stopped.

A stop asked for mid-epoch (`TrainLoop.stop_requested`, set by the runner's SIGUSR1 handler when a batch
job's time is nearly up) ends the epoch after the current step with MidEpochStop, whose `position` (the
epoch's seed, which fixes its shuffle order and augmentation draws, the batches done and the partial sums)
goes into the checkpoint; given back as `TrainLoop.resume_at`, the same epoch skips those batches (still
drawn, so the order and the random state match) and trains the rest: every sample once.
"""
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import data


def pick_device(name):
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("spec asks for device 'cuda' but torch sees no CUDA device; use device: auto")
    return torch.device("cuda")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def epoch_seed(seed, phase_index, epoch):
    return (seed * 1000003 + phase_index * 10007 + epoch) % 2 ** 31


def milestone_epochs(spec):
    """The 0-based epochs at which the lr decays (`lr_milestones` are fractions of `epochs`)."""
    return [int(round(frac * spec["epochs"])) for frac in spec["lr_milestones"]]


def lr_at(spec, epoch, search=False):
    """Learning rate of 0-based `epoch` in the schedule of `spec['epochs']` epochs; with `search`, in the
    Early-Bird search's own schedule (`search_lr`, `search_lr_milestones`) where the spec sets one."""
    lr = spec["lr"]
    milestones = milestone_epochs(spec)
    if search and spec.get("search_lr") is not None:
        lr = spec["search_lr"]
    if search and spec.get("search_lr_milestones") is not None:
        milestones = [int(round(frac * spec["epochs"])) for frac in spec["search_lr_milestones"]]
    for milestone in milestones:
        if epoch >= milestone:
            lr *= spec["lr_gamma"]
    return lr


def make_optimizer(spec, model):
    return torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"],
                           weight_decay=spec["weight_decay"])


def _correct_topk(output, target, ks):
    top = output.topk(max(ks), dim=1)[1]
    hits = top.eq(target.view(-1, 1))
    return [hits[:, :k].any(dim=1).sum().item() for k in ks]


class MidEpochStop(Exception):
    """A stop was asked for between two steps; `position` is where the epoch stood (see the module)."""

    def __init__(self, position):
        Exception.__init__(self, "stopped at batch %d of the epoch" % position["batch"])
        self.position = position


class TrainLoop:
    """Holds the data and device of a run; trains and evaluates any model on them."""

    stop_requested = False  # set from a signal handler: stop after the current step
    resume_at = None  # a MidEpochStop position to continue from

    def __init__(self, spec, device=None):
        self.spec = spec
        self.device = device if device is not None else pick_device(spec["device"])
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.pin = self.device.type == "cuda"
        self.train_set, self.test_loader = data.loaders(spec, pin_memory=self.pin)

    def train_epoch(self, model, optimizer, epoch, seed, callbacks=(), search=False, batch_size=None):
        """One pass over the training set at the schedule's lr for global `epoch` (0-based)."""
        seed_everything(seed)
        lr = lr_at(self.spec, epoch, search)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        done = self.resume_at if self.resume_at is not None and self.resume_at["seed"] == seed else None
        self.resume_at = None
        loss_sum, correct, seen = (done["loss_sum"], done["correct"], done["seen"]) if done else (0.0, 0, 0)
        start = time.time() - (done["train_seconds"] if done else 0.0)
        for batch, (x, y) in enumerate(data.train_loader(self.spec, self.train_set, seed, self.pin, batch_size)):
            if done is not None and batch < done["batch"]:
                continue  # trained before the stop
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            out = model(x)
            loss = F.cross_entropy(out, y)
            optimizer.zero_grad()
            loss.backward()
            for cb in callbacks:
                if hasattr(cb, "after_backward"):
                    cb.after_backward(model)
            optimizer.step()
            for cb in callbacks:
                if hasattr(cb, "after_step"):
                    cb.after_step(model)
            n = y.size(0)
            loss_sum += loss.item() * n
            correct += out.argmax(1).eq(y).sum().item()
            seen += n
            if self.stop_requested:
                raise MidEpochStop({"seed": seed, "batch": batch + 1, "loss_sum": loss_sum, "correct": correct,
                                    "seen": seen, "train_seconds": time.time() - start})
        return {"loss": loss_sum / max(1, seen), "train_top1": 100.0 * correct / max(1, seen),
                "lr": lr, "train_seconds": time.time() - start}

    def evaluate(self, model):
        model.eval()
        loss_sum, top1, top5, seen = 0.0, 0, 0, 0
        with torch.no_grad():
            for x, y in self.test_loader:
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                out = model(x)
                loss_sum += F.cross_entropy(out, y, reduction="sum").item()
                c1, c5 = _correct_topk(out, y, (1, min(5, out.size(1))))
                top1 += c1
                top5 += c5
                seen += y.size(0)
        return {"test_loss": loss_sum / max(1, seen), "top1": 100.0 * top1 / max(1, seen),
                "top5": 100.0 * top5 / max(1, seen)}
