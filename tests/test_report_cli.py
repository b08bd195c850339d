"""`ebt report` end to end on synthetic records: files written, partial runs flagged, empty input."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.synthetic import record, write_run
from harness.cli import main


def test_report_writes_figures_tables_and_page(tmp_path):
    runs = tmp_path / "runs"
    masks = {0.5: {1: np.array([1, 0, 1, 0], bool), 2: np.array([1, 1, 1, 0], bool)}}
    for seed, acc in ((1, 93.0), (2, 93.4)):
        write_run(runs, record("ebtrain-ff", seed=seed, top1=acc, eb_draw_epoch=20, energy_j=210e3), masks=masks)
    write_run(runs, record("snip", seed=1, top1=92.0, energy_j=373.1e3))
    write_run(runs, record("snip", seed=2, top1=10.0, status="partial", run_id="synthetic-partial"))
    write_run(runs, record("dense", prune_ratio=0.0, dataset="digits", top1=97.0, energy_j=None))
    out = tmp_path / "results"
    assert main(["report", "--runs", str(runs / "*" / "record.json"), "--out", str(out)]) == 0

    for name in ("fig1_retrain_accuracy", "fig5_training_flops", "energy_accuracy", "fig3_mask_distance"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 0 and (out / "figures" / f"{name}.pdf").exists()
    assert not (out / "figures" / "power_trace.png").exists()
    t2 = pd.read_csv(out / "tables" / "table2_methods.csv")
    snip = t2[(t2.method == "SNIP") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)].iloc[0]
    assert snip["n"] == 1 and snip["acc_mean"] == 92.0  # partial run excluded by default
    page = (out / "REPORT.md").read_text()
    assert "`synthetic-partial`: **partial**" in page and "Records: 5 (ok: 4, partial: 1)" in page
    assert "figures/fig1_retrain_accuracy.png" in page and "runs back" in page
    assert not list(out.rglob(".*"))  # no temp files left behind

    assert main(["report", "--runs", str(runs / "*"), "--out", str(out), "--include-partial"]) == 0
    t2 = pd.read_csv(out / "tables" / "table2_methods.csv")
    snip = t2[(t2.method == "SNIP") & (t2.dataset == "CIFAR-10") & (t2.pruning_ratio == 0.5)].iloc[0]
    assert snip["n"] == 2 and snip["acc_mean"] == 51.0


def test_report_with_zero_records(tmp_path):
    out = tmp_path / "results"
    assert main(["report", "--runs", str(tmp_path / "none" / "*" / "record.json"), "--out", str(out)]) == 0
    page = (out / "REPORT.md").read_text()
    assert "No run records found" in page and "Records: 0" in page
    assert not list(out.rglob("*.png"))


def test_unwritable_out_is_a_clear_error(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["report", "--runs", str(tmp_path / "*" / "record.json"), "--out", str(blocker)]) == 1
    assert "cannot write the report" in caplog.text
