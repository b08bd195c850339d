"""The device runner for real: events, checkpoints, Early-Bird draw, kill-and-resume, bad specs."""
import json
import signal

import pytest

from experiments import checkpoint
from experiments.events import read_events
from experiments.models import build
from tests.runs import run_runner, start_runner, tiny_spec, write_spec
from tests.waiting import wait_for_events

# every test here starts the runner as a subprocess (which imports torch)
pytestmark = pytest.mark.slow


def _epochs(events, phase=None):
    return [e for e in events if e["event"] == "epoch" and (phase is None or e["phase"] == phase)]


def test_ebtrain_ff_run_writes_events_masks_ticket_and_pruned_model(tmp_path):
    spec = tiny_spec(method="ebtrain-ff")
    out = tmp_path / "run"
    proc = run_runner(write_spec(tmp_path, spec), out)
    assert proc.returncode == 0, proc.stderr
    events = read_events(out / "events.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end"
    assert [e["phase"] for e in events if e["event"] == "phase_start"] == ["search", "prune", "retrain"]
    end = events[-1]
    assert end["status"] == "ok"
    eb = end["eb"]
    drawn = [e for e in events if e["event"] == "eb_drawn" and e["ratio"] == 0.5]
    assert len(drawn) == 1 and drawn[0]["epoch"] == eb["epoch"]
    # FF: the search stops at the ticket and the retrain finishes the same 6-epoch budget
    assert len(_epochs(events, "search")) == eb["epoch"]
    assert len(_epochs(events, "retrain")) == spec["epochs"] - eb["epoch"]
    assert [e["global_epoch"] for e in _epochs(events)] == list(range(1, spec["epochs"] + 1))
    # a queue of 2 masks needs 2 epochs; distances are reported for every search epoch
    assert eb["epoch"] >= 2 and len(eb["distances"]) == eb["epoch"]
    assert all("mask_distances" in e for e in _epochs(events, "search"))
    assert end["params"]["final"] < end["params"]["dense"]
    assert sum(end["channels"]["final"]) < sum(end["channels"]["dense"])
    masks = [json.loads(l) for l in (out / "masks.jsonl").read_text().splitlines()]
    assert sorted({m["epoch"] for m in masks}) == list(range(1, eb["epoch"] + 1))
    assert (out / "tickets" / "eb-p0.5.pt").exists()
    # the final checkpoint rebuilds the pruned model exactly
    ckpt = checkpoint.load(out / "checkpoints" / "last.pt")
    desc = ckpt["model"]
    model = build(desc["arch"], desc["depth"], desc["num_classes"], cfg=desc["cfg"])
    model.load_state_dict(ckpt["model_state"])
    assert desc["cfg"] == end["model"]["cfg"]


def test_reinit_retrains_full_budget_from_fresh_weights(tmp_path):
    spec = tiny_spec(method="ebtrain-reinit", epochs=4)
    out = tmp_path / "run"
    assert run_runner(write_spec(tmp_path, spec), out).returncode == 0
    events = read_events(out / "events.jsonl")
    assert len(_epochs(events, "retrain")) == 4
    assert _epochs(events, "retrain")[0]["global_epoch"] == 1
    info = [e for e in events if e["event"] == "phase_end" and e["phase"] == "prune"][0]["info"]
    assert info["reinit"] is True and info["params_after"] < info["params_before"]


def test_fixed_draw_epoch_overrides_detector(tmp_path):
    spec = tiny_spec(method="ebtrain-ff", eb_draw_epoch=3, eb_epsilon=0.01)
    out = tmp_path / "run"
    assert run_runner(write_spec(tmp_path, spec), out).returncode == 0
    end = read_events(out / "events.jsonl")[-1]
    assert end["eb"]["epoch"] == 3 and end["eb"]["forced"] is True


def test_killed_runner_resumes_to_the_same_result(tmp_path):
    spec = tiny_spec(method="ebtrain-ff")
    straight = tmp_path / "straight"
    assert run_runner(write_spec(tmp_path, spec), straight).returncode == 0
    reference = read_events(straight / "events.jsonl")[-1]

    out = tmp_path / "killed"
    spec_path = write_spec(tmp_path, spec, "spec2.json")
    proc = start_runner(spec_path, out)
    wait_for_events(out, lambda ev: any(e["event"] == "checkpoint" and e["phase_index"] == 2 and e["phase_epoch"] >= 1
                                 for e in ev))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = read_events(out / "events.jsonl")
    assert not any(e["event"] == "run_end" for e in before)

    resumed = run_runner(spec_path, out)
    assert resumed.returncode == 0, resumed.stderr
    events = read_events(out / "events.jsonl")
    assert sum(e["event"] == "resume" for e in events) == 1
    end = events[-1]
    assert end["status"] == "ok"
    # exactly the configured epochs: every global epoch once in the final history
    done = {}
    for e in _epochs(events):
        done[e["global_epoch"]] = e
    assert sorted(done) == list(range(1, spec["epochs"] + 1))
    # per-epoch seeding + the optimizer state in the checkpoint: same weights as a run never killed
    assert end["accuracy"] == reference["accuracy"]
    assert end["eb"]["epoch"] == reference["eb"]["epoch"]

    again = run_runner(spec_path, out)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_sigterm_stops_with_a_resumable_checkpoint(tmp_path):
    spec = tiny_spec(method="dense", prune_ratio=0.0, epochs=20)
    out = tmp_path / "run"
    spec_path = write_spec(tmp_path, spec)
    proc = start_runner(spec_path, out)
    wait_for_events(out, lambda ev: any(e["event"] == "checkpoint" and e["phase_epoch"] >= 1 for e in ev))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    end = read_events(out / "events.jsonl")[-1]
    assert end["event"] == "run_end" and end["status"] == "stopped"
    assert (out / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("bad, message", [
    ({"depth": 17}, "depth"),
    ({"methd": "dense"}, "unknown spec key 'methd'"),
    ({"prune_ratio": 1.5}, "prune_ratio"),
    ({"epochs": "many"}, "wrong type"),
    ({"method": "ebtrain-ff", "prune_ratio": 0.0}, "give a ratio in"),
])
def test_bad_spec_exits_2_with_a_clear_message(tmp_path, bad, message):
    raw = dict(tiny_spec())
    raw.update(bad)
    proc = run_runner(write_spec(tmp_path, raw), tmp_path / "run", timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "run" / "events.jsonl").exists()


def test_run_folder_with_another_spec_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "spec.json").write_text(json.dumps(tiny_spec(seed=1)))
    proc = run_runner(write_spec(tmp_path, tiny_spec(seed=2)), out, timeout=60)
    assert proc.returncode == 2 and "different spec" in proc.stderr
