"""The device-side runner: `python3 -m experiments run SPEC.json --out RUN_DIR`.

It runs a method's phases, appends events to `RUN_DIR/events.jsonl`, saves a resumable checkpoint
(`checkpoints/last.pt`) after every epoch and every phase, and samples power into `RUN_DIR/power.csv` when
the meter sits on the device. Running the same command again on the same folder resumes from the last
checkpoint and logs `resume`; a finished run (`run_end` with status ok) is left alone. A lock file keeps two
runners off one folder (across machines only on a shared mount with locking: NFSv4, or NFSv3 with lockd).
SIGTERM stops at the last checkpoint; SIGUSR1 (a Slurm job's time nearly up) stops after the current step
at a mid-epoch checkpoint and requeues the job (`_requeue_self`).
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import traceback

import torch

from hw.fileio import atomic_write_json

from . import checkpoint, conditions, events as ev, paths, spec as specs
from .events import EventLog, read_events
from .methods import METHODS
from .models import bn_layers, build, count_params, default_cfg
from .phases import STATE_EB
from .train import MidEpochStop, TrainLoop, epoch_seed, make_optimizer, seed_everything

EXIT_BAD_SPEC = 2


class Stopped(Exception):
    """SIGTERM reached the runner: the last checkpoint is on disk, the run can be resumed."""


class Run:
    """One run's live state: what phases read and change, and what a checkpoint holds."""

    def __init__(self, spec, run_dir, events, loop):
        self.spec = spec
        self.run_dir = run_dir
        self.events = events
        self.loop = loop
        self.num_classes = specs.num_classes(spec)
        seed_everything(spec["seed"])
        self.model = build(spec["arch"], spec["depth"], self.num_classes,
                           cfg=default_cfg(spec["arch"], spec["depth"], spec["width"])).to(loop.device)
        self.dense_params = self.params()
        self.dense_channels = self.channels()
        self.optimizer = None
        self.reset_optimizer()
        self.state = {}
        self.phase_index = 0
        self.phase_epoch = 0
        self.phase_info = {}
        self.best_top1 = None
        self.last_metrics = None

    def params(self):
        return count_params(self.model)

    def nonzero_params(self):
        """Parameters that are not zero: what unstructured pruning (LT, SNIP) actually removes."""
        return int(sum(int((p != 0).sum()) for p in self.model.parameters()))

    def channels(self):
        return [bn.num_features for bn in bn_layers(self.model)]

    def epoch_seed(self, global_epoch):
        return epoch_seed(self.spec["seed"], self.phase_index, global_epoch)

    def reset_optimizer(self):
        self.optimizer = make_optimizer(self.spec, self.model)

    def model_desc(self):
        return {"arch": self.spec["arch"], "depth": self.spec["depth"], "num_classes": self.num_classes,
                "cfg": list(self.model.cfg)}

    def record_epoch(self, phase, epoch, epochs, global_epoch, metrics):
        self.phase_epoch = epoch
        self.last_metrics = metrics
        if self.best_top1 is None or metrics["top1"] > self.best_top1:
            self.best_top1 = metrics["top1"]
        self.events.emit(ev.EPOCH, phase=phase, epoch=epoch, epochs=epochs, global_epoch=global_epoch,
                         **metrics)

    def epoch_end(self, phase, epoch):
        """Called after each trained epoch, before its checkpoint (a trunk seeds its branches here)."""

    def ends_phase(self, epoch):
        """Whether the phase should end after `epoch` whatever it says (a trunk's, once every branch has
        its checkpoint: `experiments.trunk`)."""
        return False

    # --- checkpoints -------------------------------------------------------------------------------
    def checkpoint_dict(self, state=None, mid_epoch=None):
        """What a checkpoint holds: the run as it is now (with `state` instead of `run.state` if given);
        `mid_epoch`: where a stopped epoch stood (a train.MidEpochStop position)."""
        return {
            "phase_index": self.phase_index, "phase_epoch": self.phase_epoch,
            "model": self.model_desc(), "model_state": self.model.state_dict(),
            "optimizer_state": self.optimizer.state_dict(), "state": self.state if state is None else state,
            "best_top1": self.best_top1, "phase_info": self.phase_info, "mid_epoch": mid_epoch,
        }

    def checkpoint(self, phase_epoch=None, mid_epoch=None):
        if phase_epoch is not None:
            self.phase_epoch = phase_epoch
        path = paths.checkpoint(self.run_dir)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        checkpoint.save(self.checkpoint_dict(mid_epoch=mid_epoch), path)
        # durable: on a shared filesystem the login node must see the epoch and its checkpoint once the job ends
        self.events.emit(ev.CHECKPOINT, phase_index=self.phase_index, phase_epoch=self.phase_epoch, durable=True)

    def restore(self, ckpt):
        desc = ckpt["model"]
        self.model = build(desc["arch"], desc["depth"], desc["num_classes"], cfg=desc["cfg"])
        self.model.load_state_dict(ckpt["model_state"])
        self.model.to(self.loop.device)
        self.reset_optimizer()
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.state = ckpt["state"]
        self.phase_index = ckpt["phase_index"]
        self.phase_epoch = ckpt["phase_epoch"]
        self.best_top1 = ckpt["best_top1"]
        self.phase_info = ckpt["phase_info"]
        self.loop.resume_at = ckpt.get("mid_epoch")

    def ticket_path(self, ratio):
        return paths.ticket(self.run_dir, ratio)

    def save_ticket(self, ratio, epoch, run_dir=None):
        """Save the model as the ticket at `ratio` (into `run_dir`, a branch's, when given); its path."""
        folder = self.run_dir if run_dir is None else run_dir
        path = paths.ticket(folder, ratio)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        checkpoint.save({"model": self.model_desc(), "model_state": self.model.state_dict(), "epoch": epoch},
                        path)
        return os.path.relpath(path, folder)

    def load_ticket(self, ratio):
        path = self.ticket_path(ratio)
        if not os.path.exists(path):
            return None
        ticket = checkpoint.load(path)
        desc = ticket["model"]
        model = build(desc["arch"], desc["depth"], desc["num_classes"], cfg=desc["cfg"])
        model.load_state_dict(ticket["model_state"])
        return model.to(self.loop.device)


def _device_info(device):
    from hw.platform import device_info
    info = device_info()
    info["torch_device"] = str(device)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _open_sampler(spec, run_dir):
    """(the primary meter when it sits on this device, else None; the samplers of every meter here, else
    None). The primary samples into power.csv, secondary meter n (`meters_extra`) into power-n.csv."""
    from hw.meters import NONE, open_meter
    from hw.sampler import PowerSampler, SamplerGroup
    rate = spec["meter_rate_hz"]
    meter = None
    if spec["meter"] != NONE and spec["meter_where"] == "device":
        meter = open_meter(spec["meter"])
    extras = []
    try:
        where = spec.get("meters_extra_where") or []
        for n, extra in enumerate(spec.get("meters_extra") or [], 1):
            if n <= len(where) and where[n - 1] != "device":
                continue  # sampled by the harness on the laptop, into the same power-n.csv name there
            m = open_meter(extra)
            if m is not None:
                extras.append((m, PowerSampler(m, paths.secondary_power_csv(run_dir, n), rate_hz=rate)))
    except BaseException:
        for m in [meter] + [m for m, _ in extras]:
            if m is not None:
                m.close()
        raise
    if meter is None and not extras:
        return None, None
    primary = PowerSampler(meter, paths.power_csv(run_dir), rate_hz=rate) if meter is not None else None
    return meter, SamplerGroup(primary, extras).start()


def _on_signal(signum, frame):
    raise Stopped("stopped by signal %d" % signum)


# --- a batch job's time limit (Slurm `--signal=B:USR1@GRACE`) ---------------------------------------------
def _stop_soon(signum, frame):
    """SIGUSR1: the job's time is nearly up; stop after the current training step (MidEpochStop)."""
    TrainLoop.stop_requested = True


def _requeue_self():
    """Queue this Slurm batch job again, so its next attempt resumes from the mid-epoch checkpoint, unless
    it was requeued EBT_MAX_REQUEUES times already (Slurm counts them in SLURM_RESTART_COUNT)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return
    done = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    cap = int(os.environ.get("EBT_MAX_REQUEUES") or 20)
    if done >= cap:
        sys.stderr.write("job %s not requeued: requeued %d times already (EBT_MAX_REQUEUES=%d); `ebt resume` "
                         "continues the run\n" % (job, done, cap))
        return
    # Slurm answers a requeue with SIGTERM; the run is saved and its log closed, so this exit needs no
    # stop (the handler would raise inside interpreter shutdown).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if subprocess.call(["scontrol", "requeue", job]) != 0:
        sys.stderr.write("scontrol requeue %s failed; `ebt resume` continues the run\n" % job)
# ------------------------------------------------------------------------------------------------------------


class _Session:
    """One runner session over a run folder: its event log, its sampler, its outcome."""

    def __init__(self, spec, run_dir, events):
        self.spec = spec
        self.run_dir = run_dir
        self.events = events
        self.meter, self.sampler = None, None
        self.run = None
        self.status, self.error, self.final = ev.FAILED, None, None
        self.requeue = False  # stopped for a time limit: queue the batch job again once the log is closed

    def new_run(self, loop):
        return Run(self.spec, self.run_dir, self.events, loop)

    def phases(self):
        return METHODS[self.spec["method"]].phases()

    def start(self):
        """Open the meter, build the run, log `run_start` (and `resume` from a checkpoint); the phases."""
        spec = self.spec
        self.meter, self.sampler = _open_sampler(spec, self.run_dir)
        loop = TrainLoop(spec)
        self.run = run = self.new_run(loop)
        phases = self.phases()
        ckpt_path = paths.checkpoint(self.run_dir)
        branch = _branched(self.run_dir)
        resumed = os.path.exists(ckpt_path) and branch is None
        meter_info = self.meter.info() if self.meter is not None else {"spec": spec["meter"], "kind": None}
        self.events.emit(ev.RUN_START, run_id=spec["run_id"], method=spec["method"], resumed=resumed,
                         pid=os.getpid(), device=_device_info(loop.device), meter=meter_info,
                         params_dense=run.dense_params, channels_dense=run.dense_channels,
                         train_samples=len(loop.train_set), phases=[p.name for p in phases], durable=True)
        if os.path.exists(ckpt_path):
            run.restore(checkpoint.load(ckpt_path))
            where = dict(phase_index=run.phase_index, phase_epoch=run.phase_epoch, durable=True)
            if branch is not None:
                self.events.emit(ev.BRANCH, trunk=branch["trunk"], trunk_dir=branch["trunk_dir"], **where)
            else:
                self.events.emit(ev.RESUME, **where)
        return phases

    def run_phases(self, phases):
        run = self.run
        while run.phase_index < len(phases):
            phase = phases[run.phase_index]
            done = run.phase_epoch
            if done == 0:
                run.phase_info = {}
            self.events.emit(ev.PHASE_START, phase=phase.name, index=run.phase_index,
                             epochs=phase.planned_epochs(run), done=done, model=run.model_desc(),
                             board=conditions.snapshot())
            phase.run(run, done)
            self.events.emit(ev.PHASE_END, phase=phase.name, index=run.phase_index, epochs=run.phase_epoch,
                             model=run.model_desc(), info=run.phase_info, board=conditions.snapshot(),
                             durable=True)
            run.phase_index += 1
            run.phase_epoch = 0
            run.checkpoint()
        self.final = run.loop.evaluate(run.model)
        self.status = ev.OK

    def end(self):
        """Stop the sampler and log `run_end` with the outcome (and, when ok, what the run produced)."""
        stats = self.sampler.stop() if self.sampler is not None else None
        if self.meter is not None:
            self.meter.close()
        end = {"status": self.status, "error": self.error, "sampler": stats}
        run = self.run
        if self.status == ev.OK:
            end.update(accuracy={"top1": self.final["top1"], "top5": self.final["top5"],
                                 "best_top1": run.best_top1},
                       params={"dense": run.dense_params, "final": run.params(),
                               "nonzero": run.nonzero_params()},
                       channels={"dense": run.dense_channels, "final": run.channels()},
                       model=run.model_desc(), eb=run.state.get(STATE_EB))
        self.events.emit(ev.RUN_END, durable=True, **end)


def _branched(run_dir):
    """The trunk link of a run whose first session starts from a trunk's checkpoint, else None."""
    link = paths.branch(run_dir)
    if not os.path.exists(link) or not os.path.exists(paths.checkpoint(run_dir)):
        return None
    if any(e["event"] == ev.RUN_START for e in read_events(paths.events(run_dir))):
        return None  # a later session of a branch resumes as any run does
    with open(link) as fh:
        return json.load(fh)


def execute(spec, run_dir, session_class=_Session):
    """Run (or resume) the spec in `run_dir`; returns the process exit code."""
    events_path = paths.events(run_dir)
    if ev.outcome(read_events(events_path)) == ev.OK:
        print("run %s already finished in %s" % (spec["run_id"], run_dir))
        return 0
    events = EventLog(events_path)
    signal.signal(signal.SIGTERM, _on_signal)
    TrainLoop.stop_requested = False
    signal.signal(signal.SIGUSR1, _stop_soon)
    session = session_class(spec, run_dir, events)
    board = conditions.Board(spec, run_dir, events)  # power mode and clocks: set here, restored below
    try:
        phases = session.start()
        board.take()
        session.run_phases(phases)
        return 0
    except MidEpochStop as err:  # SIGUSR1: a time limit is near; save where the epoch stood
        session.run.checkpoint(mid_epoch=err.position)
        session.status, session.error, session.requeue = ev.STOPPED, "time limit near (SIGUSR1): %s" % err, True
        return 1
    except Stopped as err:
        session.status, session.error = ev.STOPPED, str(err)
        return 1
    except Exception as err:
        session.error = "%s: %s" % (type(err).__name__, err)
        traceback.print_exc()
        return 1
    finally:
        board.release()  # before run_end: a follower that builds the record at run_end sees it
        session.end()
        events.close()
        if session.requeue:
            _requeue_self()


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python3 -m experiments",
                                     description="Device-side runner of the Early-Bird energy suite.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run (or resume) one spec.json into a run folder")
    run.add_argument("spec", help="path to spec.json")
    run.add_argument("--out", required=True, help="run folder (created; re-running it resumes)")
    args = parser.parse_args(argv)
    if args.command != "run":
        parser.print_help()
        return EXIT_BAD_SPEC
    from .trunk import is_trunk, run_trunk
    if is_trunk(args.spec):
        return run_trunk(args.spec, args.out)
    try:
        spec = specs.load(args.spec)
    except specs.SpecError as err:
        sys.stderr.write("bad spec: %s\n" % err)
        return EXIT_BAD_SPEC
    if not spec.get("run_id"):
        sys.stderr.write("bad spec: 'run_id' is missing (the harness sets it; add one to run by hand)\n")
        return EXIT_BAD_SPEC
    problem = conditions.prepare(spec, args.out)  # before the run folder exists: nothing half-made
    if problem:
        sys.stderr.write("cannot set the board: %s\n" % problem)
        return EXIT_BAD_SPEC
    os.makedirs(args.out, exist_ok=True)
    frozen = paths.spec(args.out)
    if os.path.exists(frozen):
        if specs.load(frozen) != spec:
            sys.stderr.write("%s already holds a different spec (run %s); use a new --out folder\n"
                             % (args.out, specs.load(frozen).get("run_id")))
            return EXIT_BAD_SPEC
    else:
        atomic_write_json(frozen, spec)
    return locked(args.out, lambda: execute(spec, args.out))


def locked(out, work):
    """`work()` with the run folder `out` locked against a second runner (exit 3 when it is taken)."""
    lock = open(paths.lock(out), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.stderr.write("another runner is working in %s; wait for it or stop it first\n" % out)
        return 3
    with open(paths.runner_pid(out), "w") as fh:
        fh.write("%d\n" % os.getpid())
    return work()

