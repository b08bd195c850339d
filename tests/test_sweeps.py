"""`ebt run CONFIG` as a sweep: a run per combination, each with its own values; the same command again
skips what is done, continues what is not, and `--force` reruns from scratch; `--dry-run` lists it all."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments import events as ev
from experiments import paths
from harness import sweep
from harness.cli import main
from harness.config import expand
from tests.runs import ROOT, TINY
from tests.waiting import wait_for_events

# 2 x 2 over keys that are not in the readable part of the run id: the case that used to collapse to 1.
SWEEP = dict(TINY, method="ebtrain-ff", epochs=3, meter="none",
             sweep={"eb_draw_epoch": [1, 2], "lr": [0.1, 0.05]})


def records(results):
    return {p.parent.name: json.loads(p.read_text()) for p in Path(results).glob("runs/*/" + paths.RECORD)}


def starts(home, run_id):
    return [e for e in ev.read_events(paths.events(paths.run_dir(home, run_id))) if e["event"] == ev.RUN_START]


@pytest.fixture
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    return path


def run(config, tmp_path, *extra):
    return main(["run", str(config), "--results", str(tmp_path / "results"), *extra])


@pytest.mark.slow
def test_a_2x2_sweep_runs_4_runs_and_the_same_command_again_starts_nothing(config, tmp_path, capsys):
    home, results = tmp_path / "home", tmp_path / "results"
    assert run(config, tmp_path) == 0
    got = records(results)
    assert len(got) == 4 and all(r["status"] == ev.OK for r in got.values())
    values = {(r["config"]["eb_draw_epoch"], r["config"]["lr"]) for r in got.values()}
    assert values == {(1, 0.1), (1, 0.05), (2, 0.1), (2, 0.05)}
    assert all(r["eb"]["epoch"] == r["config"]["eb_draw_epoch"] for r in got.values())
    capsys.readouterr()

    assert run(config, tmp_path) == 0
    assert "nothing to do: all 4 runs have ok records" in capsys.readouterr().out
    assert all(len(starts(home, rid)) == 1 for rid in got)

    # a run that ended ok but lost its record on the laptop is fetched and recorded, not trained again
    lost = sorted(got)[0]
    (results / "runs" / lost / paths.RECORD).unlink()
    assert run(config, tmp_path, "--dry-run") == 0
    assert "4 runs: 3 done (skipped), 1 to continue; dry run" in capsys.readouterr().out
    assert run(config, tmp_path) == 0
    assert records(results)[lost]["status"] == ev.OK and len(starts(home, lost)) == 1

    # --force reruns from an empty run folder (one run only, to keep the test short)
    one = ["--set", "eb_draw_epoch=1", "--set", "lr=0.1"]
    forced = next(rid for rid, r in got.items() if (r["config"]["eb_draw_epoch"], r["config"]["lr"]) == (1, 0.1))
    assert run(config, tmp_path, *one, "--force") == 0
    assert len(starts(home, forced)) == 1 and records(results)[forced]["created"] != got[forced]["created"]


@pytest.mark.slow
def test_running_the_config_again_resumes_a_stopped_run(tmp_path, monkeypatch):
    home, results = tmp_path / "home", tmp_path / "results"
    monkeypatch.setenv("EBT_HOME", str(home))
    config = tmp_path / "one.yaml"
    config.write_text(yaml.safe_dump(dict(TINY, method="dense", epochs=4, meter="none")))
    (spec,) = expand(yaml.safe_load(config.read_text()))
    run_dir = paths.run_dir(home, spec["run_id"])
    argv = ["run", str(config), "--results", str(results)]
    first = subprocess.Popen([sys.executable, "-c", "import sys; from harness.cli import main; "
                              "sys.exit(main(sys.argv[1:]))", *argv], cwd=str(ROOT),
                             env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for_events(run_dir, lambda events: any(e["event"] == ev.CHECKPOINT for e in events))
    os.kill(int(Path(paths.runner_pid(run_dir)).read_text()), signal.SIGTERM)
    assert first.wait(timeout=120) == 1  # `ebt run` saw the run stop
    assert ev.last_end(ev.read_events(paths.events(run_dir)))["status"] == ev.STOPPED

    assert main(argv) == 0
    events = ev.read_events(paths.events(run_dir))
    assert [e["event"] for e in events].count(ev.RESUME) == 1
    assert sorted(e["epoch"] for e in events if e["event"] == ev.EPOCH) == [1, 2, 3, 4]
    assert records(results)[spec["run_id"]]["status"] == ev.OK


def test_plan_reads_the_results_folder(tmp_path):
    specs = expand(dict(SWEEP))
    results = tmp_path / "results"
    done, known, failed = (Path(paths.results_run(results, s["run_id"])) for s in specs[:3])
    for folder in (done, known, failed):
        folder.mkdir(parents=True)
        (folder / paths.RUN_INFO).write_text("{}")
    (done / paths.RECORD).write_text(json.dumps({"status": ev.OK}))
    (failed / paths.RECORD).write_text(json.dumps({"status": ev.FAILED}))
    assert [p.action for p in sweep.plan(specs, results)] == [sweep.SKIP, sweep.CONTINUE, sweep.CONTINUE,
                                                             sweep.START]
    assert [p.action for p in sweep.plan(specs, results, force=True)] == [sweep.RERUN] * 3 + [sweep.START]
    assert sweep.summary(sweep.plan(specs, results)) == "4 runs: 1 done (skipped), 2 to continue, 1 to start"


def test_dry_run_table_shows_only_the_keys_that_differ(config, tmp_path, capsys):
    assert run(config, tmp_path, "--dry-run") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["run_id", "method", "lr", "eb_draw_epoch", "action"]
    assert [line.split()[2:] for line in lines[1:5]] == [
        ["0.1", "1", "start"], ["0.05", "1", "start"], ["0.1", "2", "start"], ["0.05", "2", "start"]]
    assert lines[5].endswith("4 runs: 4 to start; dry run, nothing started")
    assert not (tmp_path / "results").exists() and not (tmp_path / "home").exists()


def test_remove_deletes_a_run_folder_on_the_local_target(tmp_path, monkeypatch):
    from harness.targets.local import LocalTarget

    monkeypatch.setenv("EBT_HOME", str(tmp_path / "home"))
    target = LocalTarget()
    folder = Path(target.run_dir("vgg11-digits-dense-p0-s0-0123456789"))
    (folder / paths.CHECKPOINTS).mkdir(parents=True)
    (folder / paths.EVENTS).write_text("{}\n")
    target.remove(str(folder))
    assert not folder.exists() and folder.parent.exists()
    target.remove(str(folder))  # absent is fine


def test_remove_on_ssh_deletes_only_run_folders(ssh_device):
    from harness.targets.ssh import SSHTarget

    target = SSHTarget(ssh_device.url)
    try:
        folder = target.run_dir("vgg11-digits-dense-p0-s0-0123456789")
        Path(folder, paths.CHECKPOINTS).mkdir(parents=True)
        Path(folder, paths.EVENTS).write_text("{}\n")
        target.remove(folder)
        assert not Path(folder).exists() and Path(folder).parent.exists()
        with pytest.raises(ValueError, match="not a run folder"):
            target.remove(str(ssh_device.root))
        assert ssh_device.root.exists()
    finally:
        target.close()
