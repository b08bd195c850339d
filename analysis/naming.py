"""The paper's names for the suite's (arch, depth), datasets and methods, and the paper's row order.

Methods come only from the registry `experiments.methods.METHODS` (its order is the tables' row order);
each method's `display` is its row label, its `group` ("reference", "baseline" or "eb") places it in
the Improv. rule, and `table3_label` names its Table 3 row (None: not in Table 3). A method added to
the registry shows up in every table and figure without a change here.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.datasets import DATASETS
from experiments.methods import BASELINE, EB, REFERENCE  # noqa: F401 (the groups, re-exported for analysis)

# The paper's labels of the two EB variants its draw-epoch experiments use (Tables 1/4, Figs 1/5; Fig 2).
DEFAULT_EB = "EB Train (FF)"
LOW_PRECISION_SEARCH_EB = "EB Train (LF)"


@dataclass(frozen=True)
class MethodInfo:
    key: str
    display: str
    group: str
    table3_label: str | None
    low_precision: tuple[bool, ...]  # per training phase (search, retrain, ...): emulated 8-bit or not


_READ: dict[tuple, list[MethodInfo]] = {}  # the registry's (name, method) pairs -> what `methods` made of them


def methods() -> list[MethodInfo]:
    """Every registered method, in registry order: made again whenever the registry changed (a test may
    register one), else the list made for it (a report asks hundreds of times)."""
    from experiments.methods import METHODS

    key = tuple(METHODS.items())
    if key not in _READ:
        _READ.clear()
        _READ[key] = _infos(METHODS)
    return list(_READ[key])


def _infos(registry) -> list[MethodInfo]:
    from experiments.methods import is_low_precision
    from experiments.spec import resolve

    spec = resolve({"run_id": "naming"})  # the defaults: the precision of a phase may depend on the spec
    return [MethodInfo(k, m.display, m.group, m.table3_label,
                       tuple(is_low_precision(p) for p in m.precisions(spec).values()))
            for k, m in registry.items()]


def method_order() -> list[str]:
    return [m.display for m in methods()]


def displays(group: str) -> list[str]:
    return [m.display for m in methods() if m.group == group]


def eb_fp32() -> list[str]:
    """EB variants trained entirely in FP32 (the paper's re-init and FF rows)."""
    return [m.display for m in methods() if m.group == EB and not any(m.low_precision)]


def eb_all_low_precision() -> list[str]:
    """EB variants trained entirely in emulated 8-bit (the paper's LL row)."""
    return [m.display for m in methods() if m.group == EB and m.low_precision and all(m.low_precision)]


def eb_keys() -> set[str]:
    return {m.key for m in methods() if m.group == EB}


def table3_labels() -> dict[str, str]:
    """Table 2 display name -> Table 3 row label, for the methods Table 3 has."""
    return {m.display: m.table3_label for m in methods() if m.table3_label}


def model_name(arch: str, depth: int | None) -> str:
    """VGG16, PreResNet101, ResNet18 ... (the paper's spelling; other depths follow the same pattern)."""
    stem = {"vgg": "VGG", "preresnet": "PreResNet", "resnet": "ResNet"}.get(str(arch).lower(), str(arch))
    return f"{stem}{'' if depth is None else int(depth)}"


def dataset_name(dataset: str) -> str:
    """The paper's dataset name (the registry's `display`); a name the registry lacks stays as it is."""
    known = DATASETS.get(str(dataset).lower())
    return known.display if known else str(dataset)


def method_name(method: str) -> str:
    names = {m.key: m.display for m in methods()}
    return names.get(str(method), str(method))
