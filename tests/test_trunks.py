"""Shared trunks: runs whose first phases are the same train them once and branch, with the results of
the runs alone (`experiments.trunk`, `harness.trunks`)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from analysis.records import records_frame
from experiments import checkpoint, paths, runner
from experiments import trunk as tk
from experiments import events as ev
from experiments.events import EventLog
from experiments.spec import resolve
from harness.cli import main as ebt
from harness.config import load_specs
from harness.record import build_record, write_record
from tests.method_runs import small_spec
from tests.record_runs import T0, _power, _run_end

ROOT = Path(__file__).resolve().parents[1]

# Fig 1 in little: FF tickets at p 0.3/0.5/0.7 drawn at epochs 3 and 6 of 10, one seed, on digits
FIG1 = dict(method="ebtrain-ff", arch="vgg", depth=11, width=0.125, dataset="digits", epochs=10, batch_size=32,
            train_subset=32, test_subset=32, eb_ratios=[0.3, 0.5, 0.7], device="cpu", workers=0, meter="none",
            sweep={"prune_ratio": [0.3, 0.5, 0.7], "eb_draw_epoch": [3, 6]})


def write_config(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def events_of(folder: Path) -> list[dict]:
    return ev.read_events(paths.events(folder))


def search_epochs(folder: Path) -> int:
    return sum(e["event"] == ev.EPOCH and e["phase"] == "search" for e in events_of(folder))


def results(home: Path, res: Path) -> dict[str, dict]:
    """Per run id: what a run reports (record fields) and its final weights."""
    out = {}
    for record_path in sorted(Path(res, paths.RUNS).glob("*/" + paths.RECORD)):
        record = json.loads(record_path.read_text())
        rid = record["run_id"]
        weights = checkpoint.load(paths.checkpoint(Path(home, paths.RUNS, rid)))["model_state"]
        out[rid] = {"record": {k: record[k] for k in ("status", "accuracy", "params", "channels", "eb")},
                    "weights": weights}
    return out


def alone_and_shared(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """What each run of the config reports run alone (`--no-share`), then with trunks shared."""
    out = []
    for mode, flags in (("alone", ["--no-share"]), ("shared", [])):
        monkeypatch.setenv("EBT_HOME", str(tmp_path / mode))
        assert ebt(["run", str(config), *flags, "--results", str(tmp_path / f"res-{mode}")]) == 0
        out.append(results(tmp_path / mode, tmp_path / f"res-{mode}"))
    return out[0], out[1]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # 13 runner processes; a few seconds each on an idle machine
def test_a_fig1_sweep_shares_its_search_and_gives_the_results_of_the_runs_alone(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, FIG1)
    alone, shared = alone_and_shared(config, tmp_path, monkeypatch)
    assert len(alone) == 6 and sorted(shared) == sorted(alone)  # the same run ids
    for rid, mine in alone.items():
        assert shared[rid]["record"] == mine["record"], rid  # same best top-1, ticket epoch, pruned model
        assert all(torch.equal(shared[rid]["weights"][k], w) for k, w in mine["weights"].items()), rid
    (trunk,) = (tmp_path / "shared" / paths.TRUNKS).iterdir()
    branches = [tmp_path / "shared" / paths.RUNS / rid for rid in shared]
    # the search trained once, 6 epochs (the latest draw), not 6 x (3 or 6) = 27
    assert search_epochs(trunk) + sum(search_epochs(b) for b in branches) == 6
    assert sum(search_epochs(tmp_path / "alone" / paths.RUNS / rid) for rid in alone) == 27
    for b in branches:
        (branch,) = [e for e in events_of(b) if e["event"] == ev.BRANCH]
        assert branch["trunk"] == trunk.name and branch["phase_epoch"] in (3, 6)
        assert not any(e["event"] == ev.RESUME for e in events_of(b))
    # nothing to do when done
    assert ebt(["run", str(config), "--results", str(tmp_path / "res-shared")]) == 0
    capsys.readouterr()
    assert ebt(["status", "--results", str(tmp_path / "res-shared")]) == 0
    assert f"{trunk.name}: ok, 6 epoch(s) trained once for 6 runs" in capsys.readouterr().out


@pytest.mark.slow
def test_configs_run_together_share_one_trunk_across_them(tmp_path, monkeypatch, capsys):
    """Two configs whose runs begin alike (tickets drawn at epochs 2 and 3 of one search), given to one
    `ebt run`: one trunk trains 3 search epochs for both, each run keeps the id its config gives it, and
    running either config again finds nothing to do."""
    small = dict(FIG1, epochs=4, eb_ratios=[0.5])
    configs = []
    for draw in (2, 3):
        folder = tmp_path / f"draw{draw}"
        folder.mkdir()
        configs.append(write_config(folder, dict(small, sweep={"prune_ratio": [0.5], "eb_draw_epoch": [draw]})))
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    res = tmp_path / "res"
    assert ebt(["run", *map(str, configs), "--results", str(res)]) == 0
    ids = {tuple(s["run_id"] for s in load_specs(c, {}, None, "", res)) for c in configs}
    done = {p.parent.name for p in Path(res, paths.RUNS).glob("*/" + paths.RECORD)}
    assert {rid for group in ids for rid in group} == done and len(done) == 2
    (trunk,) = (tmp_path / "home" / paths.TRUNKS).iterdir()
    assert search_epochs(trunk) == 3
    assert not any(search_epochs(tmp_path / "home" / paths.RUNS / rid) for rid in done)
    capsys.readouterr()
    for config in configs:
        assert ebt(["run", str(config), "--results", str(res)]) == 0
        assert "nothing to do" in capsys.readouterr().out


def _wait_for(condition, timeout=300.0):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_killed_trunk_resumes_and_every_run_completes_each_epoch_once(tmp_path):
    # epochs of about a second (32 steps), so the trunk is killed mid-search, not after it, on a quiet machine
    raw = dict(FIG1, epochs=5, train_subset=1024, sweep={"prune_ratio": [0.5], "eb_draw_epoch": [2, 4]})
    config = write_config(tmp_path, raw)
    home, res = tmp_path / "home", tmp_path / "res"
    env = dict(os.environ, EBT_HOME=str(home), PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main(sys.argv[1:]))",
            "run", str(config), "--results", str(res)]
    first = subprocess.Popen(argv, env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    trunks = home / paths.TRUNKS
    # killed once it has a checkpoint to resume from (before its first, a rerun rightly starts it afresh)
    _wait_for(lambda: trunks.exists() and any(search_epochs(t) >= 1 and Path(paths.checkpoint(t)).is_file()
                                              for t in trunks.iterdir()))
    (trunk,) = trunks.iterdir()
    os.kill(int(Path(paths.runner_pid(trunk)).read_text()), signal.SIGKILL)
    out = first.communicate(timeout=300)[0].decode()
    assert first.returncode == 1 and "waits for its trunk" in out
    early = [json.loads(p.read_text()) for p in Path(res, paths.RUNS).glob("*/" + paths.RECORD)]
    assert len(early) < 2 and all(r["shared"] for r in early)  # a run past the kill's epoch ran; none alone
    done = subprocess.run(argv, env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [json.loads(p.read_text()) for p in Path(res, paths.RUNS).glob("*/" + paths.RECORD)]
    assert sorted(r["eb"]["epoch"] for r in records) == [2, 4] and all(r["status"] == ev.OK for r in records)
    log = events_of(trunk)
    (resume,) = [i for i, e in enumerate(log) if e["event"] == ev.RESUME]
    before = [e["epoch"] for e in log[:resume] if e["event"] == ev.EPOCH]
    after = [e["epoch"] for e in log[resume:] if e["event"] == ev.EPOCH]
    # a kill between an epoch's event and its checkpoint loses that epoch's work: it is trained again
    lost = [e for e in before if e > log[resume]["phase_epoch"]]
    assert len(lost) <= 1 and sorted(set(before) - set(lost)) + after == [1, 2, 3, 4]  # each epoch once
    for r in records:
        epochs = [(e["phase"], e["epoch"]) for e in events_of(home / paths.RUNS / r["run_id"])
                  if e["event"] == ev.EPOCH]
        assert len(epochs) == len(set(epochs)) and not any(p == "search" for p, _ in epochs)


def _meter_start(log: EventLog, t: float, run_id: str) -> None:
    log.emit(ev.RUN_START, t=t, run_id=run_id, method="ebtrain-ff", resumed=False, pid=1,
             device={"board": None, "host": "synthetic"},
             meter={"spec": "synthetic", "kind": "synthetic", "where": "device", "scope": "module"},
             params_dense=1000, channels_dense=[64, 64], train_samples=1437, phases=["search"])


def test_a_branch_bills_the_trunk_epochs_it_used_from_the_trunks_trace(tmp_path):
    """Trunk: 3 search epochs at 10 W, the branch cut after epoch 2; the branch's own phases at 20 W."""
    results = tmp_path / "results"
    trunk = Path(paths.results_trunk(results, "trunk-abc"))
    trunk.mkdir(parents=True)
    log = EventLog(paths.events(trunk))
    _meter_start(log, T0, "trunk-abc")
    log.emit(ev.PHASE_START, t=T0 + 1, phase="search", index=0, epochs=10, done=0, model=None)
    for k in (1, 2, 3):
        log.emit(ev.EPOCH, t=T0 + 1 + 10 * k, phase="search", epoch=k, epochs=10, global_epoch=k, top1=50.0)
        log.emit(ev.CHECKPOINT, t=T0 + 1.5 + 10 * k, phase_index=0, phase_epoch=k)
    log.close()
    _power(paths.power_csv(trunk), T0, T0 + 40, 10.0)

    run = Path(paths.results_run(results, "branch"))
    run.mkdir(parents=True)
    spec = resolve({"run_id": "branch", "dataset": "digits", "epochs": 10, "meter": "synthetic"})
    Path(paths.spec(run)).write_text(json.dumps(spec))
    t1 = T0 + 100
    log = EventLog(paths.events(run))
    _meter_start(log, t1, "branch")
    log.emit(ev.BRANCH, t=t1, trunk="trunk-abc", trunk_dir="/elsewhere", phase_index=0, phase_epoch=2)
    log.emit(ev.PHASE_START, t=t1, phase="search", index=0, epochs=10, done=2, model=None)
    log.emit(ev.PHASE_END, t=t1 + 1, phase="search", index=0, epochs=2, model=None, info={})
    log.emit(ev.PHASE_START, t=t1 + 1, phase="retrain", index=1, epochs=8, done=0, model=None)
    log.emit(ev.PHASE_END, t=t1 + 9, phase="retrain", index=1, epochs=8, model=None, info={})
    log.emit(ev.RUN_END, t=t1 + 9, **_run_end(ev.OK, 90.0, None, 0.5, 2, True, None, None))
    log.close()
    _power(paths.power_csv(run), t1, t1 + 9, 20.0)

    record = build_record(run)
    shared = record["shared"]
    # epochs 1 and 2 of the trunk: [T0+1, T0+11] and [T0+11.5, T0+21], not epoch 3
    assert shared["trunk"] == "trunk-abc" and shared["epochs"] == 2 and shared["seconds"] == pytest.approx(19.5)
    assert shared["energy_j"] == pytest.approx(195.0, rel=1e-3) and shared["energy_uncertainty_j"] > 0
    search, retrain = record["phases"]
    assert search["energy_j"] == pytest.approx(195.0 + 20.0, rel=1e-3)  # billed beside its own second
    assert search["seconds"] == pytest.approx(20.5)
    assert record["totals"]["energy_j"] == pytest.approx(195.0 + 20.0 + 160.0, rel=1e-3)
    row = records_frame([write_record(record, run)]).iloc[0]
    assert row["shared_trunk"] == "trunk-abc" and row["shared_energy_kj"] == pytest.approx(0.195, rel=1e-3)
    assert build_record(run, code_root=None)["resumed"] is False


def _run(tmp_path: Path, raw: dict, out: Path) -> int:
    """The device runner, in this process, on `raw` (a spec, or a trunk's spec) into `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_path = out.parent / (out.name + ".json")
    spec_path.write_text(json.dumps(raw))
    handler = signal.getsignal(signal.SIGTERM)
    try:
        return runner.main(["run", str(spec_path), "--out", str(out)])
    finally:
        signal.signal(signal.SIGTERM, handler)


@pytest.mark.slow
def test_dense_trainings_are_shared_whole_with_the_methods_that_start_with_them(tmp_path):
    """dense and ThiNet start with the same dense training (NS at two ratios, with the same BN-L1 training):
    one trunk, and each run's result is the run's alone."""
    small = dict(train_subset=64, test_subset=32, thinet_images=10)
    specs = [small_spec("dense", prune_ratio=0.0, run_id="dense", **small),
             small_spec("thinet", run_id="thinet", **small)]
    ids = [tk.trunk_id(s) for s in specs]
    assert ids[0] == ids[1]
    assert tk.trunk_id(small_spec("ns", prune_ratio=0.3)) == tk.trunk_id(small_spec("ns", prune_ratio=0.5)) != ids[0]
    home = tmp_path / "home"
    for s in specs:
        assert _run(tmp_path, s, tmp_path / "alone" / s["run_id"]) == 0
    branches = [(s, str(home / paths.RUNS / s["run_id"])) for s in specs]
    assert _run(tmp_path, tk.trunk_spec(ids[0], branches), Path(paths.trunk_dir(home, ids[0]))) == 0
    for s in specs:
        assert _run(tmp_path, s, home / paths.RUNS / s["run_id"]) == 0
        alone, shared = (ev.last_end(events_of(d / s["run_id"])) for d in (tmp_path / "alone", home / paths.RUNS))
        assert {k: shared[k] for k in ("accuracy", "params", "channels", "model")} == {
            k: alone[k] for k in ("accuracy", "params", "channels", "model")}, s["run_id"]
        trained = [e for e in events_of(home / paths.RUNS / s["run_id"]) if e["event"] == ev.EPOCH]
        assert not any(e["phase"] == "train" for e in trained)  # the trunk trained it


def test_the_report_bills_each_run_whole_and_counts_each_trunk_once():
    """Trunk A (branches cut after epochs 2 and 4), one run alone, trunk B's branch without a meter."""
    from analysis.sharing import ALONE, TOTAL, sweep_spending

    rows = [dict(run_id="a2", seconds=50.0, energy_kj=5.0, shared_trunk="trunk-a", shared_epochs=2,
                 shared_seconds=10.0, shared_energy_kj=1.0),
            dict(run_id="a4", seconds=60.0, energy_kj=6.0, shared_trunk="trunk-a", shared_epochs=4,
                 shared_seconds=20.0, shared_energy_kj=2.0),
            dict(run_id="alone", seconds=30.0, energy_kj=3.0, shared_trunk=None, shared_epochs=None,
                 shared_seconds=None, shared_energy_kj=None),
            dict(run_id="b3", seconds=40.0, energy_kj=None, shared_trunk="trunk-b", shared_epochs=3,
                 shared_seconds=15.0, shared_energy_kj=None)]
    table = sweep_spending(pd.DataFrame(rows)).set_index("group")
    a, alone, b, total = (table.loc[k] for k in ("trunk-a", ALONE, "trunk-b", TOTAL))
    assert (a["runs"], a["trunk_epochs"]) == (2, 4)
    assert (a["billed_seconds"], a["spent_seconds"]) == (110.0, 100.0)  # 110 - (10 + 20) + 20 once
    assert (a["billed_energy_kj"], a["spent_energy_kj"]) == (11.0, 10.0)
    assert (alone["billed_seconds"], alone["spent_seconds"], alone["spent_energy_kj"]) == (30.0, 30.0, 3.0)
    assert b["spent_seconds"] == 40.0 and pd.isna(b["billed_energy_kj"]) and pd.isna(b["spent_energy_kj"])
    assert (total["runs"], total["trunk_epochs"], total["spent_seconds"]) == (4, 7, 170.0)
    assert pd.isna(total["spent_energy_kj"])  # a run without a meter: no total, never a zero


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_run_drawn_at_the_best_search_epoch_branches_there_once_the_trunk_knows_it(tmp_path, monkeypatch):
    """Fig 1's star: `eb_draw_epoch: best` draws the ticket of the search epoch with the best top-1, after the
    whole search; shared, it branches from the trunk at the end, with the result of the run alone."""
    # lr x20 at epoch 4 of 5 wrecks the last epoch: the best search epoch is not the last
    raw = dict(FIG1, epochs=5, train_subset=128, lr=0.5, lr_gamma=20.0, lr_milestones=[0.7], eb_ratios=[0.5],
               sweep={"prune_ratio": [0.5], "eb_draw_epoch": [2, "best"]})
    config = write_config(tmp_path, raw)
    alone, shared = alone_and_shared(config, tmp_path, monkeypatch)
    assert sorted(shared) == sorted(alone) and len(alone) == 2
    for rid, mine in alone.items():
        assert shared[rid]["record"] == mine["record"], rid
        assert all(torch.equal(shared[rid]["weights"][k], w) for k, w in mine["weights"].items()), rid
    (trunk,) = (tmp_path / "shared" / paths.TRUNKS).iterdir()
    search = [e for e in events_of(trunk) if e["event"] == ev.EPOCH]
    assert [e["epoch"] for e in search] == [1, 2, 3, 4, 5]  # the whole budget: the best is known at its end
    best = max(search, key=lambda e: (e["top1"], -e["epoch"]))["epoch"]  # the first of equal bests
    (star,) = [json.loads(p.read_text()) for p in Path(tmp_path / "res-shared", paths.RUNS).glob("*/" + paths.RECORD)
               if json.loads(p.read_text())["config"]["eb_draw_epoch"] == "best"]
    assert 1 < best < 5, [e["top1"] for e in search]
    assert star["eb"]["epoch"] == best and star["eb"]["forced"] and star["eb"]["search_epochs"] == 5
    assert star["eb"]["retrain_start"] == best  # FF goes on from the best epoch's ticket
    assert star["shared"]["epochs"] == 5  # alone it searches the whole budget too


def test_the_draw_epoch_is_an_epoch_or_best():
    assert resolve({"eb_draw_epoch": "best"})["eb_draw_epoch"] == "best"
    with pytest.raises(ValueError, match="expected an epoch or 'best'"):
        resolve({"eb_draw_epoch": "bset"})
    with pytest.raises(ValueError, match="null, 'best' or an epoch in"):
        resolve({"eb_draw_epoch": 0})


def test_fig1_draws_the_best_epoch_runs_as_stars_and_tables_1_and_4_leave_them_out(tmp_path):
    from analysis import tables
    from analysis.fig_draw_epoch import fig1_retrain_accuracy
    from analysis.records import load_records, usable_runs
    from tests.record_runs import make_run

    for seed, acc in ((1, 92.0), (2, 93.0)):
        make_run(tmp_path, seed=seed, best_top1=acc, eb_draw_epoch=10, flops=False)
    for seed, (epoch, acc) in ((1, (120, 93.5)), (2, (130, 94.5))):
        make_run(tmp_path, seed=seed, best_top1=acc, eb_draw_epoch="best", eb_epoch=epoch, flops=False)
    runs = usable_runs(load_records(str(tmp_path / "*")))
    fig = fig1_retrain_accuracy(runs)
    star = fig.data[fig.data["drawn_by"] == "best"]
    assert len(star) == 1 and star.iloc[0]["draw_epoch"] == 125 and star.iloc[0]["mean"] == 94.0
    assert star.iloc[0]["n"] == 2 and len(fig.data[fig.data["drawn_by"] == "fixed"]) == 1
    markers = {line.get_marker() for line in fig.fig.axes[0].lines if list(line.get_xdata()) == [125]}
    assert "*" in markers  # a star (the others are its error bars' caps)
    t1 = tables.table1(runs)
    listed = {rid for ids in t1["run_ids"].dropna() for rid in ids.split()}
    assert listed == set(runs.loc[runs["draw_epoch"] == 10, "run_id"])  # the stars are no Table 1 column


def test_a_branch_job_waits_for_its_trunks_job_and_dies_with_it():
    from harness.targets.slurm import SlurmTarget

    target = SlurmTarget("slurm://login?partition=tx2")
    argv = target.sbatch_argv("/c", "/r/spec.json", "/r", "run-1", after=[7])
    assert "--dependency=afterok:7,singleton" in argv and "--kill-on-invalid-dep=yes" in argv
    assert "--kill-on-invalid-dep=yes" not in target.sbatch_argv("/c", "/r/spec.json", "/r", "run-1")
