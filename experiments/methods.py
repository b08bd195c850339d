"""The method registry: the one list of training methods, each a short list of phases over one train loop.

`METHODS` (name -> `Method`, in Table 2's row order) is what the spec validates `method` against, what the
runner runs and what the analysis takes every name, label and grouping from. Adding a method means adding
one `Method` below (and its phase module); nothing else lists methods.

EB Train (Sec 4.2):

- ``ebtrain-ff``: search with BN sparsity until the Early-Bird ticket at ratio p emerges, prune it, keep
  its weights and continue the same schedule to the total budget (the official scripts retrain from the
  EB epoch to epoch 160, at the schedule's lr for that epoch).
- ``ebtrain-reinit``: search, prune, re-initialise the pruned network and train it for the full schedule.
- ``ebtrain-lf``: the search in emulated 8-bit precision (SWALP), pruning and an FP32 retrain as
  ``ebtrain-ff``.
- ``ebtrain-ll``: search and retrain in emulated 8-bit precision (`experiments.low_precision`).
- ``dense``: the unpruned reference.

`phases.EarlyBirdRetrain` says what the retrain does when no ticket was drawn, or one too late.

Table 2's baselines, each over the same loop (their modules say more):

- ``ns``: network slimming (`experiments.slimming`): dense training with BN L1, channel pruning, fine-tune.
- ``lt``: one-shot lottery ticket (`experiments.lottery`): dense training, global magnitude mask, rewind to
  the initial weights, retrain under the mask.
- ``snip``: SNIP (`experiments.snip`): mask by connection sensitivity at init, train under the mask.
- ``thinet``: ThiNet (`experiments.thinet`): dense training, greedy next-layer reconstruction pruning
  layer by layer, fine-tune.
"""
import collections

from .low_precision import LowPrecisionRetrain, LowPrecisionSearch
from .lottery import PruneAndRewind, SaveInit
from .phases import (FLOPS_DENSE, FLOPS_NOTES, FLOPS_PRUNED, ChannelPrune, EarlyBirdRetrain, EarlyBirdSearch,
                     FineTune, Train, is_low_precision)
from .slimming import SlimmingTrain
from .snip import SnipPrune
from .thinet import ThiNetPrune
from .unstructured import MaskedTrain

# Method groups: the unpruned reference, the pruning baselines, the Early-Bird variants.
REFERENCE = "reference"
BASELINE = "baseline"
EB = "eb"
GROUPS = (REFERENCE, BASELINE, EB)

__all__ = ["METHODS", "Method", "methods_in_group", "REFERENCE", "BASELINE", "EB", "GROUPS", "FLOPS_PRUNED",
           "FLOPS_DENSE", "FLOPS_NOTES", "is_low_precision"]


class Method:
    """One training method.

    `name` is the spec's `method` value; `display` the paper's row label (Table 2, Fig 1-5); `group` one
    of `GROUPS`; `table3_label` its Table 3 row, None when Table 3 has none; `needs_ratio` whether it
    prunes (then `prune_ratio` must be > 0). `phases()` builds fresh phase objects: each says its
    `precision` and `flops_rule`, and `flops_rule` of the method is "dense" when any of its phases counts
    dense FLOPs (an unstructured mask), else "pruned" (each phase's FLOPs are those of its model).
    """

    def __init__(self, name, display, group, phases, table3_label=None, needs_ratio=True):
        if group not in GROUPS:
            raise ValueError("method group %r unknown; use one of %s" % (group, ", ".join(GROUPS)))
        self.name = name
        self.display = display
        self.group = group
        self.table3_label = table3_label
        self.needs_ratio = needs_ratio
        self._phases = phases

    def phases(self):
        return self._phases()

    @property
    def flops_rule(self):
        return FLOPS_DENSE if any(p.flops_rule == FLOPS_DENSE for p in self.phases()) else FLOPS_PRUNED

    @property
    def flops_note(self):
        return FLOPS_NOTES[self.flops_rule]

    def precisions(self, spec):
        """{phase name: precision} of the training phases under `spec` (e.g. {"search": "bfp8", ...})."""
        return {p.name: p.precision(spec) for p in self.phases() if p.trains}

    def problem(self, spec):
        """Why `spec` makes no sense for this method (one line naming the fix), or None."""
        if self.needs_ratio and spec["prune_ratio"] <= 0.0:
            return ("spec key 'prune_ratio' = %r is not allowed for method '%s': it prunes, so give a ratio "
                    "in (0, 1)" % (spec["prune_ratio"], self.name))
        return None


def _full(run):
    return run.spec["epochs"]


def _dense():
    return [Train("train", epochs=_full)]


def _ebtrain_ff():
    return [EarlyBirdSearch(), ChannelPrune(reinit=False), EarlyBirdRetrain(continue_schedule=True)]


def _ebtrain_reinit():
    return [EarlyBirdSearch(), ChannelPrune(reinit=True), EarlyBirdRetrain(continue_schedule=False)]


def _ebtrain_lf():
    return [LowPrecisionSearch(), ChannelPrune(reinit=False), EarlyBirdRetrain(continue_schedule=True)]


def _ebtrain_ll():
    return [LowPrecisionSearch(), ChannelPrune(reinit=False), LowPrecisionRetrain(continue_schedule=True)]


def _ns():
    return [SlimmingTrain(), ChannelPrune(from_ticket=False), FineTune()]


def _lt():
    return [SaveInit(), Train("train", epochs=_full), PruneAndRewind(), MaskedTrain("retrain", epochs=_full)]


def _snip():
    return [SnipPrune(), MaskedTrain("train", epochs=_full)]


def _thinet():
    return [Train("train", epochs=_full), ThiNetPrune(), FineTune()]


# Table 2's row order, the unpruned reference first.
METHODS = collections.OrderedDict((m.name, m) for m in [
    Method("dense", "Unpruned", REFERENCE, _dense, table3_label="Unpruned", needs_ratio=False),
    Method("lt", "LT (one-shot)", BASELINE, _lt),
    Method("snip", "SNIP", BASELINE, _snip),
    Method("ns", "NS", BASELINE, _ns, table3_label="NS"),
    Method("thinet", "ThiNet", BASELINE, _thinet, table3_label="ThiNet"),
    Method("ebtrain-reinit", "EB Train (re-init)", EB, _ebtrain_reinit),
    Method("ebtrain-ff", "EB Train (FF)", EB, _ebtrain_ff, table3_label="EB Train"),
    Method("ebtrain-lf", "EB Train (LF)", EB, _ebtrain_lf),
    Method("ebtrain-ll", "EB Train (LL)", EB, _ebtrain_ll),
])


def methods_in_group(group):
    """The registered methods of `group`, in registry order (read afresh: a test may register one)."""
    return [m for m in METHODS.values() if m.group == group]
