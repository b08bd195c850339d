"""Every training method as a short list of phases over the one train loop.

`METHODS[name].phases(spec)` gives the phases; `METHODS[name].check(spec)` rejects specs that make no
sense for the method. EB Train (Sec 4.2):

- ``ebtrain-ff``: search with BN sparsity until the Early-Bird ticket at ratio p emerges, prune it, keep
  its weights and continue the same schedule to the total budget (the official scripts retrain from the
  EB epoch to epoch 160, at the schedule's lr for that epoch).
- ``ebtrain-reinit``: search, prune, re-initialise the pruned network and train it for the full schedule.
- ``dense``: the unpruned reference.
"""
from .phases import ChannelPrune, EarlyBirdSearch, Train
from .sparsity import BNSparsity


def _retrain_callbacks(run):
    return [BNSparsity(run.spec["sparsity"])] if run.spec["retrain_sparsity"] else []


def _eb_epoch(run):
    return run.state["eb"]["epoch"]


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
    return [Train("train", epochs=lambda run: run.spec["epochs"])]


def _ebtrain_ff(spec):
    return [
        EarlyBirdSearch(),
        ChannelPrune(reinit=False),
        Train("retrain", epochs=lambda run: run.spec["epochs"] - _eb_epoch(run), start=_eb_epoch,
              callbacks=_retrain_callbacks),
    ]


def _ebtrain_reinit(spec):
    return [
        EarlyBirdSearch(),
        ChannelPrune(reinit=True),
        Train("retrain", epochs=lambda run: run.spec["epochs"], callbacks=_retrain_callbacks),
    ]


METHODS = dict((m.name, m) for m in [
    Method("dense", _dense, needs_ratio=False),
    Method("ebtrain-ff", _ebtrain_ff),
    Method("ebtrain-reinit", _ebtrain_reinit),
])
