"""Every training method as a short list of phases over the one train loop.

`METHODS[name].phases(spec)` gives the phases; `METHODS[name].check(spec)` rejects specs that make no
sense for the method. EB Train (Sec 4.2):

- ``ebtrain-ff``: search with BN sparsity until the Early-Bird ticket at ratio p emerges, prune it, keep
  its weights and continue the same schedule to the total budget (the official scripts retrain from the
  EB epoch to epoch 160, at the schedule's lr for that epoch).
- ``ebtrain-reinit``: search, prune, re-initialise the pruned network and train it for the full schedule.
- ``ebtrain-lf``: the search in emulated 8-bit precision (SWALP), pruning and an FP32 retrain as ``ebtrain-ff``.
- ``ebtrain-ll``: search and retrain in emulated 8-bit precision (`experiments.low_precision`).
- ``dense``: the unpruned reference.

Table 2's baselines, each over the same loop (their modules say more):

- ``ns``: network slimming (`experiments.slimming`): dense training with BN L1, channel pruning, fine-tune.
- ``lt``: one-shot lottery ticket (`experiments.lottery`): dense training, global magnitude mask, rewind to
  the initial weights, retrain under the mask.
- ``snip``: SNIP (`experiments.snip`): mask by connection sensitivity at init, train under the mask.
- ``thinet``: ThiNet (`experiments.thinet`): dense training, greedy next-layer reconstruction pruning
  layer by layer, fine-tune.
"""
from .low_precision import LowPrecisionSearch, LowPrecisionTrain
from .lottery import PruneAndRewind, SaveInit
from .phases import ChannelPrune, EarlyBirdSearch, FineTune, Train
from .slimming import SlimmingTrain
from .snip import SnipPrune
from .sparsity import BNSparsity
from .thinet import ThiNetPrune
from .unstructured import MaskedTrain


def _retrain_callbacks(run):
    return [BNSparsity(run.spec["sparsity"])] if run.spec["retrain_sparsity"] else []


def _eb_epoch(run):
    return run.state["eb"]["epoch"]


def _full(run):
    return run.spec["epochs"]


def _retrain_from_eb(run):
    """FF retraining continues the schedule from the ticket's epoch to the total budget."""
    return run.spec["epochs"] - _eb_epoch(run)


class Method(object):
    def __init__(self, name, phases, needs_ratio=True):
        self.name = name
        self._phases = phases
        self.needs_ratio = needs_ratio

    def phases(self, spec):
        return self._phases(spec)

    def check(self, spec):
        from .spec import SpecError
        if self.needs_ratio and spec["prune_ratio"] <= 0.0:
            raise SpecError("spec key 'prune_ratio' = %r is not allowed for method '%s': it prunes, "
                            "so give a ratio in (0, 1)" % (spec["prune_ratio"], self.name))


def _dense(spec):
    return [Train("train", epochs=_full)]


def _ebtrain_ff(spec):
    return [
        EarlyBirdSearch(),
        ChannelPrune(reinit=False),
        Train("retrain", epochs=_retrain_from_eb, start=_eb_epoch, callbacks=_retrain_callbacks),
    ]


def _ebtrain_reinit(spec):
    return [
        EarlyBirdSearch(),
        ChannelPrune(reinit=True),
        Train("retrain", epochs=_full, callbacks=_retrain_callbacks),
    ]


def _ebtrain_lf(spec):
    return [
        LowPrecisionSearch(),
        ChannelPrune(reinit=False),
        Train("retrain", epochs=_retrain_from_eb, start=_eb_epoch, callbacks=_retrain_callbacks),
    ]


def _ebtrain_ll(spec):
    return [
        LowPrecisionSearch(),
        ChannelPrune(reinit=False),
        LowPrecisionTrain("retrain", epochs=_retrain_from_eb, start=_eb_epoch, callbacks=_retrain_callbacks),
    ]


def _ns(spec):
    return [SlimmingTrain(), ChannelPrune(from_ticket=False), FineTune()]


def _lt(spec):
    return [SaveInit(), Train("train", epochs=_full), PruneAndRewind(), MaskedTrain("retrain", epochs=_full)]


def _snip(spec):
    return [SnipPrune(), MaskedTrain("train", epochs=_full)]


def _thinet(spec):
    return [Train("train", epochs=_full), ThiNetPrune(), FineTune()]


METHODS = dict((m.name, m) for m in [
    Method("dense", _dense, needs_ratio=False),
    Method("ebtrain-ff", _ebtrain_ff),
    Method("ebtrain-reinit", _ebtrain_reinit),
    Method("ebtrain-lf", _ebtrain_lf),
    Method("ebtrain-ll", _ebtrain_ll),
    Method("ns", _ns),
    Method("lt", _lt),
    Method("snip", _snip),
    Method("thinet", _thinet),
])
