"""Each figure is drawn from the right data: checked on the returned data and on the Axes artists."""
from __future__ import annotations

import numpy as np
import pytest

from analysis import figures
from analysis.records import load_records, usable_runs
from analysis.synthetic import record, write_run


def _runs(tmp_path):
    return usable_runs(load_records(str(tmp_path / "*")))


def test_fig1_means_minmax_and_dense_line(tmp_path):
    for seed, acc in ((1, 92.0), (2, 93.0), (3, 93.5)):
        write_run(tmp_path, record("ebtrain-ff", seed=seed, top1=acc, eb_draw_epoch=10))
    write_run(tmp_path, record("ebtrain-ff", seed=1, top1=91.0, eb_draw_epoch=40))
    write_run(tmp_path, record("ebtrain-ff", seed=1, top1=90.0, eb_draw_epoch=40, status="partial", run_id="synthetic-partial"))
    write_run(tmp_path, record("dense", prune_ratio=0.0, seed=1, top1=93.3))
    res = figures.fig1_retrain_accuracy(_runs(tmp_path))

    pts = res.data[res.data["drawn_by"] == "fixed"].set_index("draw_epoch")
    assert pts.loc[10, "mean"] == pytest.approx(92.8333333) and pts.loc[10, "min"] == 92.0
    assert pts.loc[10, "max"] == 93.5 and pts.loc[10, "n"] == 3
    assert pts.loc[40, "mean"] == 91.0 and pts.loc[40, "n"] == 1  # the partial run is not plotted
    ax = res.fig.axes[0]
    xs, ys = ax.lines[0].get_data()
    assert list(xs) == [10, 40] and list(ys) == pytest.approx([92.8333333, 91.0])
    dense = [l for l in ax.lines if l.get_linestyle() == "--"]
    assert len(dense) == 1 and dense[0].get_ydata()[0] == pytest.approx(93.3)
    assert res.n_runs == 5


def test_fig2_and_fig5_plot_flops(tmp_path):
    write_run(tmp_path, record("ebtrain-lf", seed=1, top1=92.0, flops=10e15, eb_draw_epoch=20))
    write_run(tmp_path, record("ebtrain-lf", seed=2, top1=92.4, flops=12e15, eb_draw_epoch=20))
    write_run(tmp_path, record("ebtrain-ff", seed=1, top1=92.0, flops=8e15, eb_draw_epoch=20))
    write_run(tmp_path, record("ebtrain-ff", seed=2, top1=92.0, flops=None, eb_draw_epoch=20))  # no count: not plotted
    runs = _runs(tmp_path)
    f2 = figures.fig2_low_precision(runs)
    flops = f2.data[f2.data["metric"] == "flops_p"].iloc[0]
    assert flops["mean"] == pytest.approx(11.0) and flops["n"] == 2
    assert f2.fig.axes[1].lines[0].get_ydata()[0] == pytest.approx(11.0)  # bottom panel: FLOPs
    f5 = figures.fig5_training_flops(runs)
    assert list(f5.data["mean"]) == pytest.approx([8.0])
    assert f5.fig.axes[0].lines[0].get_ydata()[0] == pytest.approx(8.0)


def test_fig3_distance_matrix_and_eb_mark(tmp_path):
    n = 16
    base = np.ones(n, dtype=bool)
    masks = {}
    for epoch in range(1, 7):
        m = base.copy()
        m[: max(0, 8 - 2 * epoch)] = False  # fewer channels pruned each epoch, then stable
        masks[epoch] = m
    rec = record("ebtrain-ff", prune_ratio=0.5, eb_epoch=5)
    write_run(tmp_path, rec, masks={0.5: masks},
              events=[{"t": 1.0, "event": "eb_drawn", "ratio": 0.5, "epoch": 4}])
    res = figures.fig3_mask_distance(_runs(tmp_path))
    row = res.data.iloc[0]
    assert row["n_epochs"] == 6 and row["eb_epoch"] == 4  # events.jsonl wins over the record
    mat = res.arrays[row["key"]]
    # epochs 1 and 4+: masks differ in 6 of 16 channels, the largest distance -> 1 after normalising
    assert mat[0, 3] == pytest.approx(1.0) and mat[0, 1] == pytest.approx(2 / 6) and mat[4, 5] == 0
    ax = res.fig.axes[0]
    assert np.allclose(ax.images[0].get_array(), mat)
    red = [l for l in ax.lines if l.get_color() == "red"]
    assert {tuple(l.get_xdata()) for l in red} >= {(4, 4)}


def test_pareto_front_and_energy_figure(tmp_path):
    assert figures.pareto_front([3, 1, 2, 4], [90, 80, 85, 89]) == [1, 2, 0]
    write_run(tmp_path, record("snip", seed=1, top1=92.0, energy_j=400e3))
    write_run(tmp_path, record("ebtrain-ff", seed=1, top1=93.0, energy_j=200e3))
    write_run(tmp_path, record("ebtrain-ll", seed=1, top1=92.5, energy_j=None, estimated_energy_j=40e3))
    res = figures.energy_accuracy(_runs(tmp_path))
    d = res.data.set_index(["method_name", "kind"])
    assert d.loc[("EB Train (FF)", "measured"), "energy_kj"] == 200.0
    assert d.loc[("EB Train (LL)", "estimated"), "energy_kj"] == 40.0
    assert d.loc[("EB Train (FF)", "measured"), "on_front"] and not d.loc[("SNIP", "measured"), "on_front"]
    assert not d.loc[("EB Train (LL)", "estimated"), "on_front"]  # estimates never join the measured front


def test_power_trace_phases(tmp_path):
    phases = [{"name": "search", "epochs": 1, "start": 100.0, "end": 110.0, "seconds": 10.0, "energy_j": 50.0,
               "mean_w": 5.0, "flops": 1.0, "coverage": 1.0, "samples": 10},
              {"name": "retrain", "epochs": 1, "start": 110.0, "end": 130.0, "seconds": 20.0, "energy_j": 160.0,
               "mean_w": 8.0, "flops": 1.0, "coverage": 1.0, "samples": 20}]
    power = [(100.0 + t, 5.0 if t < 10 else 8.0) for t in range(30)]
    write_run(tmp_path, record(run_id="synthetic-power", phases=phases), power=power)
    res = figures.power_trace(_runs(tmp_path))
    assert list(res.data["phase"]) == ["search", "retrain"] and list(res.data["start_s"]) == [0.0, 10.0]
    assert res.arrays["t"][0] == 0.0 and res.arrays["watts"][-1] == 8.0
    assert list(res.fig.axes[0].lines[0].get_ydata()) == [w for _, w in power]


def test_no_data_no_figure(tmp_path):
    runs = _runs(tmp_path)
    for make in figures.ALL_FIGURES:
        res = make(runs)
        assert res.fig is None and res.data.empty and res.n_runs == 0
