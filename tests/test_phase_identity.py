"""Phases say the spec keys that determine them: runs whose first phases agree on those share them."""
from __future__ import annotations

import json

from experiments.methods import METHODS
from experiments.spec import resolve


def first(spec: dict) -> list:
    return METHODS[spec["method"]].phases()[0].identity(spec)


def test_the_search_is_determined_by_its_keys_not_by_the_ratio_or_draw():
    ff = resolve({"method": "ebtrain-ff", "prune_ratio": 0.3, "eb_draw_epoch": 3})
    same = [dict(ff, method="ebtrain-reinit"), dict(ff, prune_ratio=0.7), dict(ff, eb_draw_epoch=None),
            dict(ff, retrain_sparsity=False), dict(ff, meter="tegrastats")]
    assert all(first(s) == first(ff) for s in same)
    differ = [dict(ff, method="ebtrain-lf"), dict(ff, sparsity=1e-5), dict(ff, seed=1), dict(ff, epochs=20),
              dict(ff, eb_queue=3), dict(ff, width=0.5)]
    assert all(first(s) != first(ff) for s in differ)
    json.dumps(first(ff))  # identities are plain data: they are hashed into a trunk's name


def test_dense_training_is_thinets_first_phase_but_not_lts_nor_ns():
    dense = resolve({"method": "dense", "prune_ratio": 0.0})
    thinet = dict(dense, method="thinet", prune_ratio=0.5)
    assert first(dense) == first(thinet)
    ns = dict(dense, method="ns", prune_ratio=0.5)
    assert first(ns) != first(dense)  # BN L1 at the slimming strength
    # LT trains dense too, but after saving theta_0: a different first phase (and different epoch seeds)
    assert first(dict(dense, method="lt", prune_ratio=0.5)) != first(dense)
