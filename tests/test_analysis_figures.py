"""Each figure is drawn from the right data (records made by the real record builder): checked on the
returned data and on the Axes artists."""
from __future__ import annotations

import numpy as np
import pytest

from analysis import figures
from analysis.fig_draw_epoch import fig1_retrain_accuracy, fig2_low_precision, fig5_training_flops
from analysis.fig_energy import energy_accuracy, pareto_front, power_trace
from analysis.fig_masks import fig3_mask_distance
from analysis.records import load_records, trusted_runs, usable_runs
from experiments import events as ev
from tests.record_runs import make_run


def _runs(tmp_path):
    return trusted_runs(usable_runs(load_records(str(tmp_path / "*"))))


def test_fig1_means_minmax_and_dense_line(tmp_path):
    for seed, acc in ((1, 92.0), (2, 93.0), (3, 93.5)):
        make_run(tmp_path, seed=seed, best_top1=acc, final_top1=acc - 1, eb_draw_epoch=10, flops=False)
    make_run(tmp_path, seed=1, best_top1=91.0, eb_draw_epoch=40, flops=False)
    make_run(tmp_path, seed=1, best_top1=90.0, eb_draw_epoch=40, status=ev.PARTIAL, run_id="synthetic-partial",
             flops=False)
    make_run(tmp_path, seed=4, best_top1=20.0, flops=False, eb_extra={"late": True, "retrain_epochs": 0})
    make_run(tmp_path, "dense", prune_ratio=0.0, seed=1, best_top1=93.3, flops=False)
    res = fig1_retrain_accuracy(_runs(tmp_path))

    pts = res.data[res.data["drawn_by"] == "fixed"].set_index("draw_epoch")
    assert pts.loc[10, "mean"] == pytest.approx(92.8333333) and pts.loc[10, "min"] == 92.0
    assert pts.loc[10, "max"] == 93.5 and pts.loc[10, "n"] == 3
    assert pts.loc[40, "mean"] == 91.0 and pts.loc[40, "n"] == 1  # the partial run is not plotted
    assert not (res.data["drawn_by"] == "detector").any()  # the too-late ticket is left out
    ax = res.fig.axes[0]
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [10, 40] and list(ys) == pytest.approx([92.8333333, 91.0])
    dense = [line for line in ax.lines if list(line.get_xdata()) == [0, 1]]  # axhline: axes coordinates
    assert len(dense) == 1 and dense[0].get_ydata()[0] == pytest.approx(93.3)
    # a dense run of other settings is not this curve's dashed line
    make_run(tmp_path, "dense", prune_ratio=0.0, seed=1, best_top1=50.0, flops=False, lr=0.2)
    ax = fig1_retrain_accuracy(_runs(tmp_path)).fig.axes[0]
    assert [line.get_ydata()[0] for line in ax.lines if list(line.get_xdata()) == [0, 1]] == [pytest.approx(93.3)]
    assert res.n_runs == 5


def test_fig2_and_fig5_plot_flops(tmp_path):
    make_run(tmp_path, "ebtrain-lf", seed=1, best_top1=92.0, eb_draw_epoch=20)
    make_run(tmp_path, "ebtrain-lf", seed=2, best_top1=92.4, eb_draw_epoch=20)
    make_run(tmp_path, "ebtrain-ff", seed=1, best_top1=92.0, eb_draw_epoch=20)
    make_run(tmp_path, "ebtrain-ff", seed=2, best_top1=92.0, eb_draw_epoch=20, flops=False)  # no count: not plotted
    runs = _runs(tmp_path)
    lf = runs.loc[runs["method"].eq("ebtrain-lf"), "flops_p"].mean()
    f2 = fig2_low_precision(runs)
    flops = f2.data[f2.data["metric"] == "flops_p"].iloc[0]
    assert flops["mean"] == pytest.approx(lf) and flops["n"] == 2
    assert f2.fig.axes[1].lines[0].get_ydata()[0] == pytest.approx(lf)  # bottom panel: FLOPs
    ff = runs.loc[runs["method"].eq("ebtrain-ff"), "flops_p"].dropna()
    f5 = fig5_training_flops(runs)
    assert len(ff) == 1 and list(f5.data["mean"]) == pytest.approx(list(ff))
    assert f5.fig.axes[0].lines[0].get_ydata()[0] == pytest.approx(ff.iloc[0])


def test_fig3_distance_matrix_and_eb_mark(tmp_path):
    n = 16
    base = np.ones(n, dtype=bool)
    masks = {}
    for epoch in range(1, 7):
        m = base.copy()
        m[: max(0, 8 - 2 * epoch)] = False  # fewer channels pruned each epoch, then stable
        masks[epoch] = m
    make_run(tmp_path, prune_ratio=0.5, eb_epoch=5, epochs=8, masks={0.5: masks}, eb_events=[(0.5, 4)], flops=False)
    res = fig3_mask_distance(_runs(tmp_path))
    row = res.data.iloc[0]
    assert row["n_epochs"] == 6 and row["eb_epoch"] == 4  # the event log wins over the record
    mat = res.arrays[row["key"]]
    # epochs 1 and 4+: masks differ in 6 of 16 channels, the largest distance -> 1 after normalising
    assert mat[0, 3] == pytest.approx(1.0) and mat[0, 1] == pytest.approx(2 / 6) and mat[4, 5] == 0
    ax = res.fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), mat)
    red = [l for l in ax.lines if l.get_color() == "red"]
    assert {tuple(l.get_xdata()) for l in red} >= {(4, 4)}


def test_pareto_front_and_energy_figure(tmp_path):
    assert pareto_front([3, 1, 2, 4], [90, 80, 85, 89]) == [1, 2, 0]
    make_run(tmp_path, "snip", seed=1, best_top1=92.0, energy_j=400e3, flops=False)
    make_run(tmp_path, "ebtrain-ff", seed=1, best_top1=93.0, energy_j=200e3, flops=False)
    make_run(tmp_path, "ebtrain-ll", seed=1, best_top1=92.5, energy_j=180e3, flops=False, meter_idle_w=400.0)
    make_run(tmp_path, "ebtrain-ff", seed=2, best_top1=99.0, energy_j=1e3, flops=False, scope="wall")
    runs = _runs(tmp_path)
    res = energy_accuracy(runs)
    d = res.data[res.data["energy_scope"].ne("wall")].set_index(["method_name", "kind"])
    assert d.loc[("EB Train (FF)", "measured"), "energy_kj"] == pytest.approx(200.0)
    ll_est = runs.loc[runs["method"].eq("ebtrain-ll"), "est_energy_kj"].item()
    assert d.loc[("EB Train (LL)", "estimated"), "energy_kj"] == pytest.approx(ll_est)
    assert d.loc[("EB Train (FF)", "measured"), "on_front"] and not d.loc[("SNIP", "measured"), "on_front"]
    assert not d.loc[("EB Train (LL)", "estimated"), "on_front"]  # estimates never join the measured front
    # a wall-scope run is on its own front, never beating module-scope runs
    wall = res.data[res.data["energy_scope"].eq("wall")]
    assert len(wall) == 1 and wall["on_front"].all() and d.loc[("EB Train (FF)", "measured"), "on_front"]


def test_power_trace_phases(tmp_path):
    make_run(tmp_path, "dense", prune_ratio=0.0, run_id="synthetic-power", energy_j=1600.0, epochs=16, flops=False)
    res = power_trace(_runs(tmp_path))
    assert list(res.data["phase"]) == ["train"] and res.data["energy_j"].item() == pytest.approx(1600.0)
    # the trace starts 1 s before the run (tests/record_runs.py), one sample a second at 100 W
    assert res.arrays["t"][0] == 0.0 and list(res.data["start_s"]) == [1.0]
    assert list(res.fig.axes[0].lines[0].get_ydata()) == pytest.approx([100.0] * len(res.arrays["t"]))


def test_no_data_no_figure(tmp_path):
    runs = _runs(tmp_path)
    for figure in figures.ALL_FIGURES:
        res = figure.build(runs)
        assert res.name == figure.name
        assert res.fig is None and res.data.empty and res.n_runs == 0
