"""Helpers for the Table 2 method tests: tiny runs through the device runner, in this process.

In-process (`experiments.runner.main`) rather than a subprocess per run: a dozen runs would otherwise
spend most of their time importing torch on a loaded two-core box. The runner installs a SIGTERM handler;
it is put back afterwards so pytest's own handling is unchanged.
"""
import json
import signal

from experiments import checkpoint, runner
from experiments.events import EventLog, read_events
from experiments.methods import BASELINE, Method
from experiments.models import build
from experiments.phases import ChannelPrune, Phase, Train
from experiments.train import TrainLoop
from tests.runs import tiny_spec

# VGG11 at 1/8 width on 128 digits, 2 epochs, batch 32: a run of about a second on one core.
SMALL = dict(train_subset=128, test_subset=64, batch_size=32, epochs=2, eb_draw_epoch=1,
             thinet_images=20)


def small_spec(method, **overrides):
    raw = dict(SMALL, method=method)
    raw.update(overrides)
    return tiny_spec(**raw)


def run_method(tmp_path, spec, name="run"):
    """Run `spec` through the runner into tmp_path/name; (exit code, run folder, events)."""
    out = tmp_path / name
    spec_path = tmp_path / (name + ".spec.json")
    spec_path.write_text(json.dumps(spec))
    handler = signal.getsignal(signal.SIGTERM)
    try:
        rc = runner.main(["run", str(spec_path), "--out", str(out)])
    finally:
        signal.signal(signal.SIGTERM, handler)
    return rc, out, read_events(out / "events.jsonl")


def phase_ends(events):
    return {e["phase"]: e for e in events if e["event"] == "phase_end"}


def load_model(path):
    """(model, checkpoint dict) from a runner checkpoint or ticket."""
    ckpt = checkpoint.load(path)
    desc = ckpt["model"]
    model = build(desc["arch"], desc["depth"], desc["num_classes"], cfg=desc["cfg"])
    model.load_state_dict(ckpt["model_state"])
    return model, ckpt


def live_run(tmp_path, spec):
    """A `Run` (the runner's live state) to drive phases one by one."""
    return runner.Run(spec, str(tmp_path), EventLog(tmp_path / "events.jsonl"), TrainLoop(spec))


class Shrink(Phase):
    """A throwaway one-shot phase, as a new method's phase module would define one."""

    name = "shrink"

    def execute(self, run, done):
        run.phase_info["shrunk"] = True


def _one_epoch(run):
    return 1


def toy_method():
    """A method that is in no list but the registry (a test registers it): train, shrink, prune, train."""
    return Method("toy", "Toy (throwaway)", BASELINE, lambda: [
        Train("train", epochs=_one_epoch), Shrink(), ChannelPrune(from_ticket=False),
        Train("retrain", epochs=_one_epoch)])
