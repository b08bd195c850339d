"""`ebt run` end to end on the local target: the quickstart config (shortened), with a RAPL sysfs tree
whose counter a thread advances at a known power, so the record carries measured energy."""
import json

import pytest
import yaml

from harness.cli import main
from analysis.schema import SCHEMA
from meter_standins import WATTS, rapl  # noqa: F401  (the fixture)
from tests.runs import ROOT, added_key


@pytest.fixture
def quick_config(tmp_path):
    raw = yaml.safe_load((ROOT / "experiments" / "configs" / "quickstart.yaml").read_text())
    raw.update(epochs=6, train_subset=384, test_subset=128, width=0.125, batch_size=32, lr=0.1,
               eb_queue=2, eb_epsilon=0.3)
    path = tmp_path / "quick.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_quickstart_runs_both_methods_and_records_measured_energy(quick_config, rapl, tmp_path, monkeypatch,
                                                                   capsys):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    results = tmp_path / "results"
    assert main(["run", str(quick_config), "--results", str(results), "--meter", rapl]) == 0
    records = {r["method"]: r for r in
               (json.loads(p.read_text()) for p in sorted(results.glob("runs/*/record.json")))}
    assert set(records) == {"ebtrain-ff", "dense"}
    eb, dense = records["ebtrain-ff"], records["dense"]
    for rec in (eb, dense):
        assert rec["status"] == "ok" and rec["schema"] == SCHEMA
        assert rec["totals"]["energy_source"] == "measured"
        assert rec["totals"]["scope"] == "package" and rec["totals"]["energy_uncertainty_j"] > 0
        assert rec["totals"]["uncovered_s"] < 1.0 and rec["secondary_meters"] == []
        assert rec["meter"]["kind"] == "rapl"
        # the fake package draws WATTS all the time: energy / time must say so
        assert rec["totals"]["energy_j"] / rec["totals"]["seconds"] == pytest.approx(WATTS, rel=0.05)
        assert sum(p["energy_j"] for p in rec["phases"]) == pytest.approx(rec["totals"]["energy_j"])
        assert all(p["coverage"] > 0.9 for p in rec["phases"] if p["seconds"] > 1)
        assert rec["totals"]["flops"] > 0
        assert (results / "runs" / rec["run_id"] / "power.csv").exists()
        assert not (results / "runs" / rec["run_id"] / "checkpoints").exists()
    assert [p["name"] for p in eb["phases"]] == ["search", "prune", "retrain"]
    assert eb["eb"]["detected"] and 2 <= eb["eb"]["epoch"] <= 6
    assert eb["params"]["final"] < eb["params"]["dense"] == dense["params"]["final"]
    assert eb["totals"]["flops"] < dense["totals"]["flops"]
    assert dense["accuracy"]["top1"] > 30  # 10 classes: chance is 10%

    # an upgrade adds a spec key with a default: the same runs, nothing to do; another value: new runs
    key = added_key(monkeypatch)
    capsys.readouterr()
    assert main(["run", str(quick_config), "--results", str(results), "--meter", rapl]) == 0
    assert "nothing to do: all 2 runs have ok records" in capsys.readouterr().out
    assert main(["run", str(quick_config), "--results", str(results), "--meter", rapl, "--dry-run",
                 "--set", f"{key}=4"]) == 0
    assert "2 to start" in capsys.readouterr().out


def test_bad_config_fails_before_anything_runs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: vgg\ndepth: 12\n")
    assert main(["run", str(bad), "--results", str(tmp_path / "results")]) == 2
    assert "depth" in caplog.text and "11" in caplog.text
    assert not (tmp_path / "home").exists()


def test_unknown_target_is_a_clear_error_not_a_traceback(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    config = ROOT / "experiments" / "configs" / "quickstart.yaml"
    assert main(["run", str(config), "--results", str(tmp_path / "results"), "--target", "ftp://board"]) == 2
    assert "unknown target 'ftp://board'" in caplog.text and "ssh://" in caplog.text
    assert not (tmp_path / "home").exists()


@pytest.mark.slow
def test_a_bug_in_the_live_view_is_one_line_and_the_run_is_still_followed_and_recorded(
        quick_config, tmp_path, monkeypatch, caplog):
    from harness import console
    from harness.lifecycle import RunInfo

    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))

    def broken(self, event):
        raise KeyError("injected")  # a bug of the view's, e.g. an event without a field it expects

    monkeypatch.setattr(console.Progress, "on_event", broken)
    results = tmp_path / "results"
    assert main(["run", str(quick_config), "--results", str(results), "--set", "method=dense",
                 "--set", "epochs=2"]) == 0
    (folder,) = results.glob("runs/*")
    assert json.loads((folder / "record.json").read_text())["status"] == "ok"
    assert RunInfo.load(results, folder.name).state == "ok"  # followed to its end, not detached
    bugs = [r for r in caplog.records if "injected" in r.getMessage()]
    assert len(bugs) == 1 and "live view" in bugs[0].getMessage() and "-v" in bugs[0].getMessage()
    assert bugs[0].exc_info is None  # the traceback only with -v
    assert "lost contact" not in caplog.text and "connection to" not in caplog.text
