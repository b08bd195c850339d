"""Phases: the steps a method is made of, all over the one train loop (`experiments.train`).

A phase gets the `Run` (spec, model, loop, event log, checkpointing, a small `state` dict that is saved in
every checkpoint) and the number of its epochs already done (non-zero when the run was resumed). Phases
that train checkpoint after every epoch; one-shot phases (pruning, rewinding) are redone whole when a run
is resumed in the middle of one.
"""
import os

from .earlybird import EarlyBirdDetector, channel_mask, save_mask
from .models import fresh_copy
from .prune import prune
from .sparsity import BNSparsity
from .train import seed_everything


class Phase(object):
    name = "phase"

    def planned_epochs(self, run):
        """Epochs this phase expects to train (for progress and FLOPs); 0 for one-shot phases."""
        return 0

    def run(self, run, done):
        raise NotImplementedError


class Train(Phase):
    """Train `epochs(run)` epochs of the schedule starting at global epoch `start(run)`.

    `callbacks(run)` gives the train-loop callbacks (sparsity, masks, quantisation). `on_epoch(run, epoch)`
    may return True to end the phase early (the Early-Bird search does).
    """

    def __init__(self, name, epochs, start=lambda run: 0, callbacks=lambda run: []):
        self.name = name
        self._epochs = epochs
        self._start = start
        self._callbacks = callbacks

    def planned_epochs(self, run):
        return self._epochs(run)

    def callbacks(self, run):
        """The train-loop callbacks of this phase (subclasses add theirs, e.g. quantisation)."""
        return self._callbacks(run)

    def on_epoch(self, run, epoch, metrics):
        return False

    def run(self, run, done):
        total = self._epochs(run)
        start = self._start(run)
        callbacks = self.callbacks(run)
        for e in range(done, total):
            global_epoch = start + e
            seed = run.epoch_seed(global_epoch)
            metrics = run.loop.train_epoch(run.model, run.optimizer, global_epoch, seed, callbacks)
            metrics.update(run.loop.evaluate(run.model))
            stop = self.on_epoch(run, e + 1, metrics)
            run.record_epoch(self.name, e + 1, total, global_epoch + 1, metrics)
            run.checkpoint(phase_epoch=e + 1)
            if stop:
                break


class EarlyBirdSearch(Train):
    """Train with BN sparsity and track Early-Bird detectors for several ratios (Algorithm 1).

    Every epoch's mask at each tracked ratio goes to `masks.jsonl`; the first detection at each ratio saves
    a ticket (`tickets/eb-p<ratio>.pt`, its epoch inside). The search ends at the detection for the run's ratio
    (or at `eb_draw_epoch` when the draw epoch is fixed); with `eb_stop: false` it goes on to the full
    budget so the whole mask-distance matrix (Fig 3) can be drawn.
    """

    def __init__(self):
        Train.__init__(self, "search", epochs=lambda run: run.spec["epochs"],
                       callbacks=lambda run: [BNSparsity(run.spec["sparsity"])])

    @staticmethod
    def ratios(spec):
        return sorted(set(spec["eb_ratios"]) | {spec["prune_ratio"]})

    def run(self, run, done):
        spec = run.spec
        if "detectors" not in run.state:
            run.state["detectors"] = dict(
                (str(r), EarlyBirdDetector(r, spec["eb_epsilon"], spec["eb_queue"], spec["eb_rule"]).state_dict())
                for r in self.ratios(spec))
        self._detectors = dict((k, EarlyBirdDetector.from_state_dict(v)) for k, v in run.state["detectors"].items())
        self._masks = open(os.path.join(run.run_dir, "masks.jsonl"), "a")
        try:
            Train.run(self, run, done)
        finally:
            self._masks.close()
        target = self._detectors[str(spec["prune_ratio"])]
        run.state["eb"] = {
            "ratio": spec["prune_ratio"], "epsilon": spec["eb_epsilon"], "queue": spec["eb_queue"],
            "rule": spec["eb_rule"], "detected": target.drawn, "forced": spec["eb_draw_epoch"] is not None,
            "epoch": run.state.get("ticket_epoch", run.phase_epoch),
            "distances": target.distances,
        }

    def on_epoch(self, run, epoch, metrics):
        spec = run.spec
        distances = {}
        for key, det in sorted(self._detectors.items()):
            mask = channel_mask(run.model, det.ratio)
            emerged_before = det.drawn
            det.step_mask(mask)
            save_mask(self._masks, epoch, det.ratio, mask)
            distances[key] = det.distances[-1]
            if det.drawn and not emerged_before:
                path = run.save_ticket(det.ratio, epoch)
                run.events.emit("eb_drawn", ratio=det.ratio, epoch=epoch, ticket=path)
        metrics["mask_distances"] = distances
        run.state["detectors"] = dict((k, d.state_dict()) for k, d in self._detectors.items())
        target = self._detectors[str(spec["prune_ratio"])]
        if spec["eb_draw_epoch"] is not None:
            if epoch == spec["eb_draw_epoch"]:
                run.state["ticket_epoch"] = epoch
                run.save_ticket(spec["prune_ratio"], epoch)
                return spec["eb_stop"]
            return False
        if target.drawn and "ticket_epoch" not in run.state:
            run.state["ticket_epoch"] = epoch
            return spec["eb_stop"]
        return False


class ChannelPrune(Phase):
    """Physically prune the ticket's channels at the run's ratio (network-slimming mask).

    With `reinit` the pruned architecture is re-initialised (EB Train re-init, the official `main_c.py`
    at HEAD); otherwise it keeps the ticket's weights (EB Train FF, Sec 4.2). With `from_ticket` it prunes
    the ticket saved by the search at the run's ratio (when one was saved), else the current model.
    """

    def __init__(self, name="prune", reinit=False, from_ticket=True):
        self.name = name
        self.reinit = reinit
        self.from_ticket = from_ticket

    def run(self, run, done):
        ratio = run.spec["prune_ratio"]
        if self.from_ticket:
            ticket = run.load_ticket(ratio)
            if ticket is not None:
                run.model = ticket
        mask = channel_mask(run.model, ratio)
        before = run.params()
        pruned = prune(run.model, mask)
        if self.reinit:
            seed_everything(run.epoch_seed(0))  # the same fresh weights when a resumed run redoes this
        run.model = fresh_copy(pruned) if self.reinit else pruned
        run.model.to(run.loop.device)
        run.reset_optimizer()
        run.phase_info.update({"ratio": ratio, "params_before": before, "params_after": run.params(),
                               "cfg": run.model.cfg, "reinit": self.reinit})


class FineTune(Train):
    """Fine-tune a pruned model over the last `finetune_epochs` epochs of the schedule (default: all of it).

    Taking the schedule's tail makes a short budget run at the tail's small lr (rethinking-network-pruning's
    40 epochs at lr 0.001 is `finetune_epochs: 40` of 160), while the default, the whole schedule from lr
    0.1, is network slimming's own fine-tune (its README: `--refine` for 160 epochs), the budget Table 2's
    NS and ThiNet FLOPs imply (see `experiments.thinet`).
    """

    def __init__(self, name="finetune"):
        Train.__init__(self, name, epochs=self._budget, start=self._first)

    @staticmethod
    def _budget(run):
        return run.spec["finetune_epochs"] or run.spec["epochs"]

    @classmethod
    def _first(cls, run):
        return run.spec["epochs"] - cls._budget(run)
