"""A batch job's time limit (Slurm `--signal=B:USR1@GRACE`): the runner stops mid-epoch at a checkpoint
that holds where the epoch stood, and the resumed run trains every sample of that epoch once (the same
weights as a run that never stopped); DataLoader workers do not turn Slurm's SIGTERM into a crash.
"""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from experiments import checkpoint, paths, runner
from experiments.events import EPOCH, RUN_END, STOPPED
from experiments.train import MidEpochStop, TrainLoop
from tests.method_runs import run_method, small_spec

ROOT = Path(__file__).resolve().parents[1]


class StopAt:
    """A train callback that asks for a stop after step `n` of the run (as the USR1 handler does)."""

    def __init__(self, n):
        self.n, self.steps = n, 0

    def after_step(self, model):
        self.steps += 1
        if self.steps == self.n:
            TrainLoop.stop_requested = True


def test_a_stopped_epoch_resumes_to_the_same_weights():
    spec = small_spec("dense", train_subset=256)
    loop = TrainLoop(spec)
    run = runner.Run(spec, "/nonexistent", None, loop)
    start = {k: v.clone() for k, v in run.model.state_dict().items()}
    whole = loop.train_epoch(run.model, run.optimizer, 0, 1234)
    expected = {k: v.clone() for k, v in run.model.state_dict().items()}

    run.model.load_state_dict(start)
    run.reset_optimizer()
    try:
        with pytest.raises(MidEpochStop) as stop:
            loop.train_epoch(run.model, run.optimizer, 0, 1234, callbacks=[StopAt(3)])
    finally:
        TrainLoop.stop_requested = False
    position = stop.value.position
    assert position["batch"] == 3 and position["seen"] == 3 * spec["batch_size"] and position["seed"] == 1234
    loop.resume_at = position
    rest = loop.train_epoch(run.model, run.optimizer, 0, 1234)
    assert rest["loss"] == pytest.approx(whole["loss"]) and rest["train_top1"] == pytest.approx(whole["train_top1"])
    for name, value in run.model.state_dict().items():
        assert torch.allclose(value.float(), expected[name].float(), atol=1e-6), name
    # another epoch's seed does not pick up a stale position
    loop.resume_at = dict(position, seed=99)
    other = loop.train_epoch(run.model, run.optimizer, 1, 1235)
    assert other["loss"] > 0 and loop.resume_at is None


def test_usr1_stops_mid_epoch_and_the_rerun_finishes_every_epoch_once(tmp_path, monkeypatch):
    """The runner's SIGUSR1 handler (no Slurm job here: nothing is requeued) stops at a mid-epoch
    checkpoint with a `stopped` run_end; running again finishes with each epoch logged once."""
    spec = small_spec("dense", epochs=3, train_subset=256)
    state = {"steps": 0}
    real = TrainLoop.train_epoch

    def train_epoch(self, model, optimizer, epoch, seed, callbacks=(), search=False, batch_size=None):
        class Usr1AtStep:
            def after_step(self, model):
                state["steps"] += 1
                if state["steps"] == 12:  # epoch 2 (8 batches an epoch), batch 4
                    os.kill(os.getpid(), signal.SIGUSR1)
        return real(self, model, optimizer, epoch, seed, list(callbacks) + [Usr1AtStep()], search,
                    batch_size)

    monkeypatch.setattr(TrainLoop, "train_epoch", train_epoch)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    usr1 = signal.getsignal(signal.SIGUSR1)
    try:
        rc, out, events = run_method(tmp_path, spec)
        assert rc == 1 and [e["status"] for e in events if e["event"] == RUN_END] == [STOPPED]
        assert "time limit near" in [e for e in events if e["event"] == RUN_END][0]["error"]
        assert checkpoint.load(paths.checkpoint(str(out)))["mid_epoch"]["batch"] == 4
        rc, out, events = run_method(tmp_path, spec)
    finally:
        signal.signal(signal.SIGUSR1, usr1)
        TrainLoop.stop_requested = False
    assert rc == 0
    assert [e["epoch"] for e in events if e["event"] == EPOCH] == [1, 2, 3]


WORKERS_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    import torch
    from torch.utils.data import DataLoader, Dataset
    from experiments import data

    class Slow(Dataset):
        def __len__(self):
            return 10 ** 6
        def __getitem__(self, i):
            time.sleep(0.01)
            return torch.zeros(4)

    class Stopped(Exception):
        pass

    def on_term(signum, frame):
        raise Stopped()

    signal.signal(signal.SIGTERM, on_term)
    loader = DataLoader(Slow(), batch_size=4, num_workers=2, worker_init_fn=data._seed_worker)
    try:
        for i, batch in enumerate(loader):
            if i == 3:
                print("ready", flush=True)
    except Stopped:
        print("stopped", flush=True)
        sys.exit(0)
""")


@pytest.mark.slow
def test_sigterm_to_every_process_stops_with_dataloader_workers(tmp_path):
    """Slurm signals every process of the job (scancel(1)): with workers > 0 the runner's own handler
    still decides (stopped), instead of a worker's death failing the run."""
    proc = subprocess.Popen([sys.executable, "-c", WORKERS_SCRIPT], cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.readline().strip() == "ready"
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "stopped" in out, err
    assert "exited unexpectedly" not in err and "killed by signal" not in err, err
