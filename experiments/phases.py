"""Phases: the steps a method is made of, all over the one train loop (`experiments.train`).

A phase gets the `Run` (spec, model, loop, event log, checkpointing, a small `state` dict that is saved in
every checkpoint) and the number of its epochs already done (non-zero when the run was resumed). Phases
that train checkpoint after every epoch; one-shot phases (pruning, rewinding) are redone whole when a run
is resumed in the middle of one.

Every phase says in its `phase_end` info how it computes (`precision`: ``fp32``, or the low-precision
format) and how its FLOPs are counted (`flops_rule`, with `flops_note` when they are not simply the
FLOPs of the model it trains); the record carries both per phase.
"""
from . import data, paths
from .earlybird import EarlyBirdDetector, channel_mask, save_mask
from .events import EB_DRAWN, EB_MISSING
from .models import fresh_copy
from .prune import prune
from .sparsity import BNSparsity
from .train import milestone_epochs, seed_everything

# Keys of `run.state` (saved in every checkpoint) that more than one module reads.
STATE_EB = "eb"                      # the search's outcome: the `eb` block of `run_end` and the record
STATE_DETECTORS = "detectors"        # Early-Bird detector states, per ratio
STATE_TICKET_EPOCH = "ticket_epoch"  # the epoch of the run's own ticket, once drawn
STATE_WEIGHT_MASKS = "weight_masks"  # unstructured masks ({weight name: bool tensor}), LT and SNIP
STATE_SWA = "swa"                    # the running SWA average of a low-precision phase

FP32 = "fp32"

# How a phase's FLOPs are counted: those of the model it trains, or dense (the architecture it trains
# is dense and an unstructured mask saves no dense compute, as Table 2 counts LT and SNIP).
FLOPS_PRUNED = "pruned"
FLOPS_DENSE = "dense"
FLOPS_NOTES = {
    FLOPS_PRUNED: None,
    FLOPS_DENSE: "counted dense: an unstructured mask saves no dense compute (zeros are still multiplied), "
                 "as Table 2 counts LT and SNIP",
}


def is_low_precision(precision):
    """Whether a phase's `precision` (from its info or the record) is an emulated low-precision format."""
    return precision is not None and precision != FP32


class Phase:
    """One step of a method. Subclasses implement `execute`; `run` adds what every phase reports."""

    name = "phase"
    low_precision = False     # True for phases in emulated low precision (`experiments.low_precision`)
    flops_rule = FLOPS_PRUNED

    def precision(self, spec):
        """The number format the phase computes in, as the record names it."""
        return FP32

    def planned_epochs(self, run):
        """Epochs this phase expects to train (for progress and FLOPs); 0 for one-shot phases."""
        return 0

    def run(self, run, done):
        run.phase_info.update({"precision": self.precision(run.spec), "flops_rule": self.flops_rule,
                               "flops_note": FLOPS_NOTES[self.flops_rule]})
        self.execute(run, done)

    def execute(self, run, done):
        raise NotImplementedError


def _no_callbacks(run):
    return []


def _from_start(run):
    return 0


def _full(run):
    return run.spec["epochs"]


class Train(Phase):
    """Train `epochs(run)` epochs of the schedule starting at global epoch `start(run)`.

    `callbacks(run)` gives the train-loop callbacks (sparsity, masks, quantisation). After each epoch,
    `after_epoch` may update `run.state` (the checkpoint that follows saves it) and returns extra fields
    for the epoch's event; `should_stop` may then end the phase early (the Early-Bird search does).

    `run.best_top1` restarts with every training phase, so at the end of a run it is the best epoch of
    the phase that trained the final model: the official scripts' `best_prec1` is that of the script
    that trains it (`main_c.py`'s retrain, not the search before it).
    """

    search = False  # the Early-Bird search trains in its own schedule where the spec sets one (lr_at)

    def __init__(self, name, epochs, start=_from_start, callbacks=_no_callbacks):
        self.name = name
        self._epochs = epochs
        self._start = start
        self._callbacks = callbacks

    def planned_epochs(self, run):
        return self._epochs(run)

    def start_epoch(self, run):
        """The global (0-based) epoch of the schedule this phase starts at."""
        return self._start(run)

    def callbacks(self, run):
        """The train-loop callbacks of this phase (subclasses add theirs, e.g. quantisation)."""
        return self._callbacks(run)

    def after_epoch(self, run, epoch):
        return {}

    def should_stop(self, run, epoch):
        return False

    def batch_size(self, run):
        """This phase's mini-batch size; None: the spec's `batch_size`."""
        return None

    def execute(self, run, done):
        total = self.planned_epochs(run)
        start = self.start_epoch(run)
        callbacks = self.callbacks(run)
        if done == 0:
            run.best_top1 = None
        for e in range(done, total):
            global_epoch = start + e
            seed = run.epoch_seed(global_epoch)
            metrics = run.loop.train_epoch(run.model, run.optimizer, global_epoch, seed, callbacks,
                                           search=self.search, batch_size=self.batch_size(run))
            metrics.update(run.loop.evaluate(run.model))
            metrics.update(self.after_epoch(run, e + 1))
            run.record_epoch(self.name, e + 1, total, global_epoch + 1, metrics)
            run.checkpoint(phase_epoch=e + 1)
            if self.should_stop(run, e + 1):
                break


def _search_sparsity(run):
    return [BNSparsity(run.spec["sparsity"])]


def _retrain_sparsity(run):
    return [BNSparsity(run.spec["sparsity"])] if run.spec["retrain_sparsity"] else []


class EarlyBirdSearch(Train):
    """Train with BN sparsity and track Early-Bird detectors for several ratios (Algorithm 1).

    Every epoch's mask at each tracked ratio goes to `masks.jsonl`; the first detection at each ratio saves
    a ticket (`paths.ticket`, its epoch inside). The search ends at the detection for the run's ratio (or
    at `eb_draw_epoch` when the draw epoch is fixed); with `eb_stop: false` it goes on to the full budget so
    the whole mask-distance matrix (Fig 3) can be drawn. Its outcome goes to `run.state[STATE_EB]` (see
    `outcome`), and `eb_missing` is logged when no ticket was drawn at the run's ratio.
    """

    search = True

    def __init__(self):
        super().__init__("search", epochs=_full, callbacks=_search_sparsity)
        self._detectors = {}
        self._masks = None

    @staticmethod
    def ratios(spec):
        return sorted(set(spec["eb_ratios"]) | {spec["prune_ratio"]})

    def begin(self, run):
        """Detectors from the checkpointed state (fresh ones on the first epoch)."""
        spec = run.spec
        if STATE_DETECTORS not in run.state:
            fresh = {str(r): EarlyBirdDetector(r, spec["eb_epsilon"], spec["eb_queue"], spec["eb_rule"])
                     for r in self.ratios(spec)}
            run.state[STATE_DETECTORS] = {k: d.state_dict() for k, d in fresh.items()}
        states = run.state[STATE_DETECTORS]
        self._detectors = {k: EarlyBirdDetector.from_state_dict(v) for k, v in states.items()}

    def execute(self, run, done):
        self.begin(run)
        with open(paths.masks(run.run_dir), "a") as self._masks:
            super().execute(run, done)
        run.state[STATE_EB] = outcome(run.spec, self._detectors[str(run.spec["prune_ratio"])],
                                      run.state.get(STATE_TICKET_EPOCH), run.phase_epoch)
        eb = run.state[STATE_EB]
        if eb["epoch"] is None:
            run.events.emit(EB_MISSING, ratio=eb["ratio"], epochs=eb["search_epochs"], note=eb["note"])

    def after_epoch(self, run, epoch):
        distances = {}
        for key, det in sorted(self._detectors.items()):
            mask = channel_mask(run.model, det.ratio)
            before = det.drawn
            det.step_mask(mask)
            save_mask(self._masks, epoch, det.ratio, mask)
            distances[key] = det.distances[-1]
            if det.drawn and not before:
                self._detected(run, det.ratio, epoch)
        if run.spec["eb_draw_epoch"] == epoch:
            self._draw(run, epoch, forced=True)
        run.state[STATE_DETECTORS] = {k: d.state_dict() for k, d in self._detectors.items()}
        return {"mask_distances": distances}

    def _detected(self, run, ratio, epoch):
        """A detector fired: its ticket is saved, unless the run's own ticket is drawn at a fixed epoch."""
        if ratio != run.spec["prune_ratio"]:
            ticket = run.save_ticket(ratio, epoch)
            run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=ticket, forced=False)
        elif run.spec["eb_draw_epoch"] is None:
            self._draw(run, epoch, forced=False)
        else:
            run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=None, forced=False)

    @staticmethod
    def _draw(run, epoch, forced):
        """The run's own ticket: saved, its epoch kept, announced (with a note when it came late)."""
        ratio = run.spec["prune_ratio"]
        run.state[STATE_TICKET_EPOCH] = epoch
        late, note = lateness(run.spec, epoch, forced)
        ticket = run.save_ticket(ratio, epoch)
        run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=ticket, forced=forced, late=late,
                        note=note)

    def should_stop(self, run, epoch):
        return run.spec["eb_stop"] and run.state.get(STATE_TICKET_EPOCH) is not None


def lateness(spec, epoch, forced=False):
    """(late, note) of the run's ticket drawn after `epoch` epochs.

    A detected ticket is late once the schedule's last lr decay has passed: continuing from it trains only
    at the smallest lr, and the search has cost most of a dense training. A ticket drawn at a fixed epoch
    is where the spec asked for it (Table 1's "final" column), never late. Either way the note says when
    none of the schedule is left to continue it.
    """
    last_decay = max(milestone_epochs(spec), default=spec["epochs"])
    late = not forced and epoch >= last_decay
    left = epoch < spec["epochs"]
    if not late and left:
        return False, None
    note = "ticket drawn at epoch %d of %d" % (epoch, spec["epochs"])
    if late:
        note += ", at or after the last lr decay (epoch %d)" % last_decay
    if not left:
        note += ": no epoch of the schedule is left to continue it, so it is retrained over the whole " \
                "schedule"
    return late, note


def outcome(spec, detector, ticket_epoch, search_epochs):
    """The record's `eb` block. `epoch` is the ticket's epoch, None when no ticket was drawn at the run's
    ratio (`detected` and `forced` both false); then the search's final model is pruned instead."""
    forced = spec["eb_draw_epoch"] is not None
    late, note = (False, None) if ticket_epoch is None else lateness(spec, ticket_epoch, forced)
    if ticket_epoch is None:
        note = ("no Early-Bird ticket at p=%g in %d search epochs: the search's final model is pruned and "
                "retrained over the whole schedule" % (spec["prune_ratio"], search_epochs))
    return {
        "ratio": spec["prune_ratio"], "epsilon": spec["eb_epsilon"], "queue": spec["eb_queue"],
        "rule": spec["eb_rule"], "detected": detector.drawn, "forced": forced,
        "epoch": ticket_epoch, "search_epochs": search_epochs, "late": late, "note": note,
        "distances": detector.distances,
    }


class EarlyBirdRetrain(Train):
    """Retrain the pruned ticket, with BN L1 on when `retrain_sparsity` is (the official scripts' `-sr`).

    `continue_schedule` (EB Train FF, LF, LL; the official `retrain_continue.sh`): from the ticket's epoch
    to the end of the budget at the schedule's lr. When none of the schedule is left (no ticket, so the
    search ran the whole budget, or one drawn at the last epoch) it retrains over the whole schedule from
    epoch 0 instead, as Table 1's "final" tickets are retrained and network slimming fine-tunes: zero epochs
    would report a pruned, untrained network as a result. Without it (re-init): the whole schedule.
    The retrain's start and length go into the `eb` block (`retrain_start`, `retrain_epochs`).

    A ticket after e epochs continues at 0-based epoch e, so search and retrain train `epochs` epochs in
    all. The official script resumes at its file's number, e + 1, skipping one epoch of the schedule (159
    of 160 in all); the suite keeps the whole budget, one epoch more.
    """

    def __init__(self, continue_schedule):
        super().__init__("retrain", epochs=self._budget, start=self._first, callbacks=_retrain_sparsity)
        self.continue_schedule = continue_schedule

    def _first(self, run):
        epoch = run.state[STATE_EB]["epoch"]
        if not self.continue_schedule or epoch is None or epoch >= run.spec["epochs"]:
            return 0
        return epoch

    def _budget(self, run):
        return run.spec["epochs"] - self._first(run)

    def batch_size(self, run):
        return run.spec["retrain_batch_size"]

    def execute(self, run, done):
        run.state[STATE_EB].update(retrain_start=self._first(run), retrain_epochs=self._budget(run))
        super().execute(run, done)


def sample_batches(run):
    """The training batches a one-shot phase samples from (SNIP, ThiNet), seeded like an epoch:
    augmentation draws from the global generator, so a phase redone after a resume sees the same images."""
    seed_everything(run.epoch_seed(0))
    return data.train_loader(run.spec, run.loop.train_set, run.epoch_seed(0), run.loop.pin)


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

    def execute(self, run, done):
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


def _finetune_budget(run):
    return run.spec["finetune_epochs"] or run.spec["epochs"]


def _finetune_first(run):
    return run.spec["epochs"] - _finetune_budget(run)


class FineTune(Train):
    """Fine-tune a pruned model over the last `finetune_epochs` epochs of the schedule (default: all of it).

    Taking the schedule's tail makes a short budget run at the tail's small lr (rethinking-network-pruning's
    40 epochs at lr 0.001 is `finetune_epochs: 40` of 160), while the default, the whole schedule from lr
    0.1, is network slimming's own fine-tune (its README: `--refine` for 160 epochs), the budget Table 2's
    NS and ThiNet FLOPs imply (see `experiments.thinet`).
    """

    def __init__(self, name="finetune"):
        super().__init__(name, epochs=_finetune_budget, start=_finetune_first)
