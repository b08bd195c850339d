"""Every paper config expands to the paper's grid, and configs share the runs they have in common.

The expected grids come from the paper's own tables as transcribed in `analysis/paper/*.csv` (Tables 1, 3,
4) and from the text and captions for the figures (counts written below with where they come from).
"""
import math
from pathlib import Path

import pytest

from analysis import paper
from experiments.train import lr_at
from harness.cli import main
from harness.config import load_specs

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"
MODEL = {("vgg", 16): "VGG16", ("preresnet", 101): "PreResNet101", ("resnet", 18): "ResNet18",
         ("resnet", 50): "ResNet50"}
DATASET = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet"}


def specs(name):
    return load_specs(CONFIGS / name)


def ids(name, keep=lambda s: True):
    return {s["run_id"] for s in specs(name) if keep(s)}


def setting(s):
    return MODEL[(s["arch"], s["depth"])], DATASET[s["dataset"]]


def draw(s):
    return "final" if s["eb_draw_epoch"] == s["epochs"] else str(s["eb_draw_epoch"])


def search_schedule(s):
    """Table 1's notation of the search's schedule: decay epochs with the lr from there on."""
    lr = s["search_lr"] if s["search_lr"] is not None else s["lr"]
    fracs = s["search_lr_milestones"] if s["search_lr_milestones"] is not None else s["lr_milestones"]
    steps = [] if math.isclose(lr, 0.1) else [(0, lr)]
    steps += [(round(f * s["epochs"]), lr * s["lr_gamma"] ** k) for k, f in enumerate(fracs, start=1)]
    return "_".join(f"{e}LR{v:.3g}" for e, v in steps)


def test_table1_is_the_papers_32_cells_at_p_05_with_ff_retraining():
    got = specs("table1.yaml")
    cells = {(*setting(s), search_schedule(s), draw(s)) for s in got}
    want = {tuple(r) for r in paper.table1()[["model", "dataset", "lr_schedule", "draw_epoch"]].values}
    assert len(got) == len(want) == 32 and cells == want
    assert {(s["method"], s["prune_ratio"], s["lr"], s["epochs"]) for s in got} == {("ebtrain-ff", 0.5, 0.1, 160)}


def test_table1_searches_in_its_own_schedule_and_retrains_in_the_standard_one():
    low = next(s for s in specs("table1.yaml") if s["search_lr"] is not None)
    assert [lr_at(low, e, search=True) for e in (0, 99, 100, 159)] == pytest.approx([0.01, 0.01, 0.001, 0.001])
    assert [lr_at(low, e) for e in (10, 79, 80, 120)] == pytest.approx([0.1, 0.1, 0.01, 0.001])


def test_table4_is_the_papers_32_cells_and_shares_its_lr_01_runs_with_table1():
    got = specs("table4.yaml")
    cells = {(*setting(s), f"{s['lr']:g}", draw(s)) for s in got}
    want = {(m, d, f"{lr:g}", e) for m, d, lr, e in
            paper.table4()[["model", "dataset", "initial_lr", "draw_epoch"]].values}
    assert len(got) == len(want) == 32 and cells == want
    standard = ids("table4.yaml", lambda s: s["lr"] == 0.1)
    assert len(standard) == 16 and standard == ids("table1.yaml", lambda s: s["search_lr"] is None)


def test_table3_is_the_papers_rows_but_sfp_at_90_epochs():
    got = specs("table3.yaml")
    names = {"dense": "Unpruned", "ns": "NS", "thinet": "ThiNet", "ebtrain-ff": "EB Train"}
    rows = {(MODEL[(s["arch"], s["depth"])], names[s["method"]], s["prune_ratio"]) for s in got}
    t3 = paper.table3()
    want = {(m, meth, 0.0 if math.isnan(p) else p) for m, meth, p in t3[["model", "method", "pruning_ratio"]].values
            if meth != "SFP"}  # SFP's row is quoted from its paper; the suite has no SFP
    assert len(t3) == 13 and len(got) == len(want) == 12 and rows == want
    assert {(s["dataset"], s["epochs"], round(lr_at(s, 30), 6), round(lr_at(s, 60), 6)) for s in got} == {
        ("imagenet", 90, 0.01, 0.001)}
    # the retrains as the official scripts: ResNet-18's at batch 128, ResNet-50's without BN L1
    eb = {s["depth"]: s for s in got if s["method"] == "ebtrain-ff"}
    assert (eb[18]["retrain_batch_size"], eb[18]["batch_size"], eb[18]["retrain_sparsity"]) == (128, 256, True)
    assert (eb[50]["retrain_batch_size"], eb[50]["retrain_sparsity"]) == (None, False)


def test_fig1_fig5_grid_and_the_runs_it_shares():
    got = specs("fig1-fig5.yaml")
    eb = [s for s in got if s["method"] == "ebtrain-ff"]
    # Fig 1: 4 panels (2 models x 2 datasets), 3 ratios each, the official figure's 12 draw epochs (early
    # ones, 10, 20, then every 20) and its stars (the best search epoch), 3 runs per point (the caption's
    # min/max of three runs) = 468, plus a dense model per panel over 3 seeds = 12.
    assert len(got) == 480 and len(eb) == 468
    assert sorted({s["eb_draw_epoch"] for s in eb} - {"best"}) == [1, 3, 5, 10, 20, 40, 60, 80, 100, 120, 140, 160]
    assert sum(s["eb_draw_epoch"] == "best" for s in eb) == 36
    ratios = {setting(s): set() for s in eb}
    for s in eb:
        ratios[setting(s)].add(s["prune_ratio"])
    assert ratios == {("VGG16", "CIFAR-10"): {0.3, 0.5, 0.7}, ("VGG16", "CIFAR-100"): {0.1, 0.3, 0.5},
                      ("PreResNet101", "CIFAR-10"): {0.3, 0.5, 0.7}, ("PreResNet101", "CIFAR-100"): {0.3, 0.5, 0.7}}
    fig1 = {s["run_id"] for s in got}
    assert ids("table1.yaml", lambda s: s["search_lr"] is None) <= fig1
    table2_dense = set().union(*(ids(p.relative_to(CONFIGS), lambda s: s["method"] == "dense")
                                 for p in (CONFIGS / "table2").glob("*.yaml")))
    assert len(table2_dense) == 4 and table2_dense <= fig1


def test_fig2_is_a_low_precision_search_grid_on_vgg16():
    got = specs("fig2.yaml")
    # Fig 2: VGG16 on CIFAR-10 and CIFAR-100, Fig 1's 3 ratios and 12 draw epochs, one run per point (no
    # error bars in its caption) = 72, plus the 2 dense references (the dashed lines).
    assert len(got) == 74
    assert {s["method"] for s in got} == {"ebtrain-lf", "dense"}
    assert ids("fig2.yaml", lambda s: s["method"] == "dense") <= ids("fig1-fig5.yaml")


def test_fig3_searches_the_whole_budget_at_the_four_ratios_of_the_figure():
    got = specs("fig3.yaml")
    # Fig 3: one 160 x 160 mask-distance matrix per model (VGG16, PreResNet101) and ratio (0.2..0.8), all
    # from one full-budget search per model: 2 runs.
    assert len(got) == 2
    for s in got:
        assert (s["dataset"], s["prune_ratio"], s["eb_stop"], s["epochs"]) == ("cifar100", 0.2, False, 160)
        assert s["eb_ratios"] == [0.2, 0.4, 0.6, 0.8]


def test_table2_configs_are_every_method_at_three_ratios_and_dense_once():
    for path in (CONFIGS / "table2").glob("*.yaml"):
        # Table 2: 8 methods (LT, SNIP, NS, ThiNet, EB re-init/FF/LF/LL) x 3 ratios per setting, + dense
        assert len(load_specs(path)) == 8 * 3 + 1, path


@pytest.mark.parametrize("name, count", [("table1.yaml", 32), ("table3.yaml", 12), ("table4.yaml", 32),
                                         ("fig1-fig5.yaml", 480), ("fig2.yaml", 74), ("fig3.yaml", 2),
                                         ("table2/vgg16-cifar10.yaml", 25), ("table2/vgg16-cifar100.yaml", 25),
                                         ("table2/preresnet101-cifar10.yaml", 25),
                                         ("table2/preresnet101-cifar100.yaml", 25),
                                         ("digits/table1.yaml", 8), ("digits/fig1.yaml", 13)])
def test_dry_run_prints_the_count_and_starts_nothing(name, count, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    assert main(["run", str(CONFIGS / name), "--dry-run", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert f"{count} runs: {count} to start; dry run, nothing started" in out
    assert len(out.strip().splitlines()) == count + 2  # header, one line a run, the count
    assert not results.exists() and not (tmp_path / "home").exists()
