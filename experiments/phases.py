"""Phases: the steps a method is made of, all over the one train loop (`experiments.train`).

A phase gets the `Run` (spec, model, loop, event log, checkpointing, a small `state` dict that is saved in
every checkpoint) and the number of its epochs already done (non-zero when the run was resumed). Phases
that train checkpoint after every epoch; one-shot phases (pruning, rewinding) are redone whole when a run
is resumed in the middle of one.

Every phase says in its `phase_end` info how it computes (`precision`: ``fp32``, or the low-precision
format) and how its FLOPs are counted (`flops_rule`, with `flops_note` when they are not simply the
FLOPs of the model it trains); the record carries both per phase.

What other code needs to know of a phase it asks the phase, never its class: `trains` (it runs epochs of
the train loop), `planned_cfg(spec, cfg)` (the model shape it leaves, for the planner), `draws_ticket`
(it is an Early-Bird search, drawing the run's ticket), and `identity(spec)`: the phase's kind and the
values of the spec keys that determine what it computes (`keys()`). Two runs whose first phases have
equal identities train those phases identically, so they can share them (`harness.sweep`).

The modules that compute with torch (data, train, earlybird, prune) are imported where a phase runs, not
here: the planner and the report read the declarations above without loading torch.
"""
import os

from . import paths
from .events import EB_DRAWN, EB_MISSING
from .models import count_params, default_cfg, fresh_copy
from .sparsity import BNSparsity

# Keys of `run.state` (saved in every checkpoint) that more than one module reads.
STATE_EB = "eb"                      # the search's outcome: the `eb` block of `run_end` and the record
STATE_DETECTORS = "detectors"        # Early-Bird detector states, per ratio
STATE_TICKET_EPOCH = "ticket_epoch"  # the epoch of the run's own ticket, once drawn
STATE_BEST_SEARCH = "best_search"    # [epoch, top-1] of the search's best epoch so far (eb_draw_epoch: best)
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


# The spec keys that determine any phase of a run: the model, the data, the schedule, the seed (every
# epoch is seeded from it), where it computes. A phase adds its own (`Phase.own_keys`).
RUN_KEYS = ("arch", "depth", "width", "dataset", "data_root", "train_subset", "test_subset", "seed", "epochs",
            "batch_size", "lr", "lr_milestones", "lr_gamma", "momentum", "weight_decay", "device", "workers")


def is_low_precision(precision):
    """Whether a phase's `precision` (from its info or the record) is an emulated low-precision format."""
    return precision is not None and precision != FP32


def pruned_cfg(spec):
    """The shape a channel-pruned model is planned at: every layer keeps (1 - prune_ratio) of its channels."""
    return default_cfg(spec["arch"], spec["depth"], spec["width"] * (1.0 - spec["prune_ratio"]))


class Phase:
    """One step of a method. Subclasses implement `execute`; `run` adds what every phase reports."""

    name = "phase"
    low_precision = False     # True for phases in emulated low precision (`experiments.low_precision`)
    flops_rule = FLOPS_PRUNED
    trains = False            # runs epochs of the train loop (the planner prices only these)
    draws_ticket = False      # an Early-Bird search: the run's ticket is drawn in it
    branchable = False        # as a run's first phase, trainable once for several runs (`experiments.trunk`)
    own_keys = ()             # spec keys beyond RUN_KEYS that determine what the phase computes

    def precision(self, spec):
        """The number format the phase computes in, as the record names it."""
        return FP32

    def planned_epochs(self, run):
        """Epochs this phase expects to train (for progress and FLOPs); 0 for one-shot phases."""
        return 0

    def planned_cfg(self, spec, cfg):
        """The model shape (`cfg`) the phase leaves, given the one it gets: unchanged unless it prunes."""
        return cfg

    def keys(self):
        """The spec keys that determine what this phase computes."""
        return RUN_KEYS + tuple(self.own_keys)

    def identity(self, spec):
        """What makes this phase what it is under `spec`: its kind, name and determining values (JSON)."""
        kind = type(self).__module__ + "." + type(self).__name__
        return [kind, self.name, {k: spec[k] for k in self.keys()}]

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
    trains = True
    branchable = True  # as a run's first phase its epochs depend only on its identity

    def __init__(self, name, epochs, start=_from_start, callbacks=_no_callbacks):
        self.name = name
        self._epochs = epochs
        self._start = start
        self._callbacks = callbacks

    def identity(self, spec):
        """Also the rules it was built with: two `Train`s of one name may train different budgets."""
        rules = [f.__module__ + "." + f.__name__ for f in (self._epochs, self._start, self._callbacks)]
        return super().identity(spec) + [rules]

    def planned_epochs(self, run):
        return self._epochs(run)

    def plan_epochs(self, run):
        """Epochs the planner expects it to train (`run` a stand-in whose state holds the assumed ticket)."""
        return self.planned_epochs(run)

    # --- sharing (`experiments.trunk`): what a trunk training this phase once does for each run ---
    def trunk_changes(self, specs):
        """Spec changes that let one trunk serve every run of `specs` (all of this phase's identity)."""
        return {}

    def cut(self, spec, state, epoch):
        """Whether the run of `spec` would end this phase after `epoch`, the trunk's `state` then."""
        return epoch >= self.planned_epochs(_Alone(spec))

    def tickets_due(self, spec, state, epoch):
        """The ratios whose ticket the run alone would save after `epoch`."""
        return []

    def branch_state(self, spec, state, epoch):
        """The run's own `run.state` after `epoch`, from the trunk's."""
        return dict(state)

    def start_epoch(self, run):
        """The global (0-based) epoch of the schedule this phase starts at."""
        return self._start(run)

    def callbacks(self, run):
        """The train-loop callbacks of this phase (subclasses add theirs, e.g. quantisation)."""
        return self._callbacks(run)

    def after_epoch(self, run, epoch):
        return {}

    def recorded(self, run, epoch):
        """After the epoch's event (`run.last_metrics` are its metrics), before its checkpoint."""

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
        elif self.should_stop(run, done) or run.ends_phase(done):
            total = done  # checkpointed after its last epoch (a resume, or a branch cut from a trunk there)
        for e in range(done, total):
            global_epoch = start + e
            seed = run.epoch_seed(global_epoch)
            metrics = run.loop.train_epoch(run.model, run.optimizer, global_epoch, seed, callbacks,
                                           search=self.search, batch_size=self.batch_size(run))
            metrics.update(run.loop.evaluate(run.model))
            metrics.update(self.after_epoch(run, e + 1))
            run.record_epoch(self.name, e + 1, total, global_epoch + 1, metrics)
            self.recorded(run, e + 1)
            run.epoch_end(self, e + 1)
            run.checkpoint(phase_epoch=e + 1)
            if self.should_stop(run, e + 1) or run.ends_phase(e + 1):
                break


class _Alone:
    """What `planned_epochs` reads of a run, from its spec alone."""

    def __init__(self, spec):
        self.spec = spec
        self.state = {}


def draws_at_best(spec):
    """Whether the run's ticket is drawn at its search's best epoch (`eb_draw_epoch: best`, Fig 1's stars)."""
    from .spec import BEST  # the spec module imports the method registry, hence this module
    return spec["eb_draw_epoch"] == BEST


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
    `eb_block`), and `eb_missing` is logged when no ticket was drawn at the run's ratio.
    """

    search = True
    draws_ticket = True
    branchable = True  # its epochs do not depend on where a run cuts it: runs can share them (`experiments.trunk`)
    # what each epoch trains (sparsity, its own schedule) and what the detectors make of it
    own_keys = ("sparsity", "search_lr", "search_lr_milestones", "eb_epsilon", "eb_queue", "eb_rule")

    def __init__(self):
        super().__init__("search", epochs=_full, callbacks=_search_sparsity)
        self._detectors = {}
        self._masks = None

    def plan_epochs(self, run):
        """The search stops at its ticket (assumed in `run.state`) unless told to go on (`eb_stop`)."""
        epochs = self.planned_epochs(run)
        return min(epochs, run.state[STATE_EB]["epoch"]) if self.stops_at_ticket(run.spec) else epochs

    def ticket_keys(self):
        """The keys that decide when the run's ticket is drawn: the search's and its ratio."""
        return self.keys() + ("prune_ratio",)

    def trunk_changes(self, specs):
        """Search the whole budget (the trunk ends once every run has its checkpoint), with a detector
        for every ratio any run watches."""
        watched = sorted(set(r for spec in specs for r in self.ratios(spec)))
        return {"eb_stop": False, "eb_draw_epoch": None, "eb_ratios": watched}

    @staticmethod
    def _drawn_at(state, ratio):
        from .earlybird import EarlyBirdDetector

        return EarlyBirdDetector.from_state_dict(state[STATE_DETECTORS][str(ratio)]).drawn_at

    def own_ticket_epoch(self, spec, state, epoch):
        """The epoch of the run's own ticket as its search alone would have it after `epoch`, or None
        (drawn at the best epoch: the best so far, final once the search has run its budget)."""
        fixed = spec["eb_draw_epoch"]
        if draws_at_best(spec):
            return state[STATE_BEST_SEARCH][0] if STATE_BEST_SEARCH in state else None
        if fixed is not None:
            return fixed if fixed <= epoch else None
        return self._drawn_at(state, spec["prune_ratio"])

    @staticmethod
    def stops_at_ticket(spec):
        """Whether the search ends at the run's ticket (a best-epoch ticket is known only at the end)."""
        return spec["eb_stop"] and not draws_at_best(spec)

    def cut(self, spec, state, epoch):
        if self.stops_at_ticket(spec) and self.own_ticket_epoch(spec, state, epoch) is not None:
            return True
        return epoch >= spec["epochs"]

    def tickets_due(self, spec, state, epoch):
        """Its own ticket when drawn at `epoch`, each other watched ratio's at its first detection."""
        own = spec["prune_ratio"]
        return [r for r in self.ratios(spec)
                if (self.own_ticket_epoch(spec, state, epoch) if r == own else self._drawn_at(state, r)) == epoch]

    def branch_state(self, spec, state, epoch):
        """The trunk's state with the run's own detectors and, once drawn, its ticket's epoch."""
        mine = {k: v for k, v in state.items() if k not in (STATE_DETECTORS, STATE_TICKET_EPOCH)}
        mine[STATE_DETECTORS] = {str(r): state[STATE_DETECTORS][str(r)] for r in self.ratios(spec)}
        ticket = self.own_ticket_epoch(spec, state, epoch)
        if ticket is not None:
            mine[STATE_TICKET_EPOCH] = ticket
        return mine

    @staticmethod
    def ratios(spec):
        return sorted(set(spec["eb_ratios"]) | {spec["prune_ratio"]})

    def begin(self, run):
        """Detectors from the checkpointed state (fresh ones on the first epoch)."""
        from .earlybird import EarlyBirdDetector

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
        if draws_at_best(run.spec) and run.state.get(STATE_TICKET_EPOCH) is not None:
            self._announce(run, run.state[STATE_TICKET_EPOCH], forced=True)
        run.state[STATE_EB] = eb_block(run.spec, self._detectors[str(run.spec["prune_ratio"])],
                                      run.state.get(STATE_TICKET_EPOCH), run.phase_epoch)
        eb = run.state[STATE_EB]
        if eb["epoch"] is None:
            run.events.emit(EB_MISSING, ratio=eb["ratio"], epochs=eb["search_epochs"], note=eb["note"])

    def after_epoch(self, run, epoch):
        from .earlybird import channel_mask, save_mask

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

    def recorded(self, run, epoch):
        """Keep the best search epoch (every search: a trunk's serves its best-epoch branches); a run drawn
        there saves its ticket at each new best, the last one being the ticket (announced at the end)."""
        top1 = run.last_metrics["top1"]
        best = run.state.get(STATE_BEST_SEARCH)
        if best is not None and top1 <= best[1]:
            return
        run.state[STATE_BEST_SEARCH] = [epoch, top1]
        if draws_at_best(run.spec):
            run.state[STATE_TICKET_EPOCH] = epoch
            run.save_ticket(run.spec["prune_ratio"], epoch)

    def _detected(self, run, ratio, epoch):
        """A detector fired: its ticket is saved, unless the run's own ticket is drawn at a fixed epoch."""
        if ratio != run.spec["prune_ratio"]:
            ticket = run.save_ticket(ratio, epoch)
            run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=ticket, forced=False)
        elif run.spec["eb_draw_epoch"] is None:
            self._draw(run, epoch, forced=False)
        else:
            run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=None, forced=False)

    def _draw(self, run, epoch, forced):
        """The run's own ticket: saved, its epoch kept, announced (with a note when it came late)."""
        run.state[STATE_TICKET_EPOCH] = epoch
        run.save_ticket(run.spec["prune_ratio"], epoch)
        self._announce(run, epoch, forced)

    @staticmethod
    def _announce(run, epoch, forced):
        late, note = lateness(run.spec, epoch, forced)
        ratio = run.spec["prune_ratio"]
        ticket = os.path.relpath(run.ticket_path(ratio), run.run_dir)
        run.events.emit(EB_DRAWN, ratio=ratio, epoch=epoch, ticket=ticket, forced=forced, late=late, note=note)

    def should_stop(self, run, epoch):
        return self.stops_at_ticket(run.spec) and run.state.get(STATE_TICKET_EPOCH) is not None


def lateness(spec, epoch, forced=False):
    """(late, note) of the run's ticket drawn after `epoch` epochs.

    A detected ticket is late once the schedule's last lr decay has passed: continuing from it trains only
    at the smallest lr, and the search has cost most of a dense training. A ticket drawn at a fixed epoch
    is where the spec asked for it (Table 1's "final" column), never late. Either way the note says when
    none of the schedule is left to continue it.
    """
    from .train import milestone_epochs

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


def eb_block(spec, detector, ticket_epoch, search_epochs):
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

    own_keys = ("sparsity", "retrain_sparsity", "prune_ratio", "eb_draw_epoch", "eb_stop", "eb_ratios")

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
    from . import data
    from .train import seed_everything

    seed_everything(run.epoch_seed(0))
    return data.train_loader(run.spec, run.loop.train_set, run.epoch_seed(0), run.loop.pin)


class OneShot(Phase):
    """A phase that changes the model at once (prune, rewind, save it), without training epochs.

    It is redone whole when a run resumes in the middle of it, so the base class does what makes that
    safe: it seeds every random generator from the run's epoch seed (the same draws when redone), then
    `transform(run)` returns the model the phase leaves, which becomes `run.model` on the run's device
    with a fresh optimiser (its momentum belonged to the old weights). A subclass must also say the
    shape it leaves (`planned_cfg`), so the planner prices what follows at the right width.
    """

    def execute(self, run, done):
        from .train import seed_everything

        seed_everything(run.epoch_seed(0))
        model = self.transform(run)
        run.model = model.to(run.loop.device)
        run.reset_optimizer()

    def transform(self, run):
        raise NotImplementedError

    def planned_cfg(self, spec, cfg):
        raise NotImplementedError("one-shot phase %s.%s must say the model shape it leaves (planned_cfg)"
                                  % (type(self).__module__, type(self).__name__))


class ChannelPrune(OneShot):
    """Physically prune the ticket's channels at the run's ratio (network-slimming mask).

    With `reinit` the pruned architecture is re-initialised (EB Train re-init, the official `main_c.py`
    at HEAD); otherwise it keeps the ticket's weights (EB Train FF, Sec 4.2). With `from_ticket` it prunes
    the ticket saved by the search at the run's ratio (when one was saved), else the current model.
    """

    own_keys = ("prune_ratio",)

    def __init__(self, name="prune", reinit=False, from_ticket=True):
        self.name = name
        self.reinit = reinit
        self.from_ticket = from_ticket

    def identity(self, spec):
        return super().identity(spec) + [{"reinit": self.reinit, "from_ticket": self.from_ticket}]

    def planned_cfg(self, spec, cfg):
        return pruned_cfg(spec)

    def transform(self, run):
        from .earlybird import channel_mask
        from .prune import prune
        from .train import seed_everything

        ratio = run.spec["prune_ratio"]
        if self.from_ticket:
            ticket = run.load_ticket(ratio)
            if ticket is not None:
                run.model = ticket
        mask = channel_mask(run.model, ratio)
        before = run.params()
        pruned = prune(run.model, mask)
        if self.reinit:
            seed_everything(run.epoch_seed(0))  # pruning drew from the generator: fresh weights from the seed
        model = fresh_copy(pruned) if self.reinit else pruned
        run.phase_info.update({"ratio": ratio, "params_before": before, "params_after": count_params(model),
                               "cfg": model.cfg, "reinit": self.reinit})
        return model


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

    own_keys = ("finetune_epochs",)

    def __init__(self, name="finetune"):
        super().__init__(name, epochs=_finetune_budget, start=_finetune_first)
