"""Trunks and branches: the first phase of several runs trained once, each run going on from its epoch.

Runs whose first phase has the same identity (`Phase.identity`: its kind and the values of the spec keys
that determine it) train that phase identically, epoch for epoch: an Early-Bird search does not depend
on the ratio it is cut at or on the epoch its ticket is drawn. Such a phase says it can be shared
(`branchable`). A trunk trains it once, tracking the detectors of every ratio its branches watch, and
when it passes a branch's cut (the epoch where that run's own search would stop: its fixed draw epoch,
its ticket's detection, else the budget) it writes into the branch's run folder exactly what the run
alone would have had there: the checkpoint after that epoch (model, optimiser, the run's own detectors
and ticket epoch, best top-1, phase info; every epoch is seeded from the spec, so nothing else carries
over), its tickets and its masks, and `branch.json` naming the trunk. The branch is then started as any
run: the runner finds the checkpoint and goes on from it, logging `branch` instead of `resume`, so its
result is the run's alone.

A trunk's folder is `paths.trunk_dir(root, trunk_id)`, beside the run folders; its `spec.json` holds
{"run_id": trunk id, "trunk": {"spec": the spec it trains, "branches": [{"spec", "run_dir"}, ...]}}.
It runs under `python3 -m experiments run` as a run does; a killed trunk resumes from its checkpoint.
"""
import hashlib
import json
import os

from hw.fileio import atomic_write_json, atomic_path, read_jsonl

from . import checkpoint, paths, spec as specs
from .earlybird import EarlyBirdDetector
from .methods import METHODS
from .phases import STATE_DETECTORS, STATE_TICKET_EPOCH
from .runner import Run, _Session, execute, locked

TRUNK = "trunk"
PREFIX = "trunk-"


def shared_phase(spec):
    """The run's first phase when it can be shared with other runs, else None."""
    first = METHODS[spec["method"]].phases()[0]
    return first if getattr(first, "branchable", False) else None


def trunk_id(spec):
    """The id of the trunk the run can branch from (a digest of its first phase's identity), or None."""
    phase = shared_phase(spec)
    if phase is None:
        return None
    text = json.dumps(phase.identity(spec), sort_keys=True, separators=(",", ":"))
    return PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12]


def ratios(spec):
    return sorted(set(spec["eb_ratios"]) | {spec["prune_ratio"]})


def trunk_spec(tid, branches):
    """The trunk's spec.json for `branches` [(spec, run_dir)], all of trunk `tid`: the first branch's spec,
    searching the whole budget (the trunk ends once every branch has its checkpoint) with a detector for
    every ratio any branch watches."""
    first = branches[0][0]
    watched = sorted(set(r for spec, _ in branches for r in ratios(spec)))
    base = dict(first, run_id=tid, eb_stop=False, eb_draw_epoch=None, eb_ratios=watched)
    return {"run_id": tid, TRUNK: {"spec": base, "branches": [{"spec": s, "run_dir": d} for s, d in branches]}}


def is_trunk(spec_path):
    try:
        with open(spec_path) as fh:
            return TRUNK in json.load(fh)
    except (OSError, ValueError):
        return False


def _drawn_at(detectors, ratio):
    return EarlyBirdDetector.from_state_dict(detectors[str(ratio)]).drawn_at


def own_ticket_epoch(spec, detectors, epoch):
    """The epoch of the run's own ticket as its search alone would have it after `epoch`, or None."""
    fixed = spec["eb_draw_epoch"]
    if fixed is not None:
        return fixed if fixed <= epoch else None
    return _drawn_at(detectors, spec["prune_ratio"])


def cut_epoch(spec, detectors, epoch):
    """Whether the run's own search would stop after `epoch` (its checkpoint is then due)."""
    if spec["eb_stop"] and own_ticket_epoch(spec, detectors, epoch) is not None:
        return True
    return epoch >= spec["epochs"]


def tickets_due(spec, detectors, epoch):
    """The ratios whose ticket the run alone would save after `epoch`: its own when drawn then, each
    other watched ratio at its first detection."""
    due = []
    for r in ratios(spec):
        at = own_ticket_epoch(spec, detectors, epoch) if r == spec["prune_ratio"] else _drawn_at(detectors, r)
        if at == epoch:
            due.append(r)
    return due


class Branch:
    def __init__(self, entry):
        self.spec = specs.resolve(entry["spec"])
        self.run_dir = entry["run_dir"]

    @property
    def seeded(self):
        """Its link is written (last), or it has run on its own: either way not to be written again."""
        return os.path.exists(paths.branch(self.run_dir)) or os.path.exists(paths.events(self.run_dir))


class TrunkRun(Run):
    """A trunk's live run: after each epoch it saves the tickets its branches would have saved, and
    seeds every branch whose cut it is; the phase ends once all are seeded."""

    def __init__(self, spec, run_dir, events, loop, branches):
        super().__init__(spec, run_dir, events, loop)
        self.branches = branches

    def epoch_end(self, phase, epoch):
        detectors = self.state[STATE_DETECTORS]
        for b in self.branches:
            if b.seeded:
                continue
            for r in tickets_due(b.spec, detectors, epoch):
                self.save_ticket(r, epoch, run_dir=b.run_dir)
            if cut_epoch(b.spec, detectors, epoch):
                self._seed(b, epoch)

    def ends_phase(self, epoch):
        return all(b.seeded for b in self.branches)

    def _seed(self, branch, epoch):
        """Write the branch's folder as its own run would have it after `epoch`; the link last."""
        spec = branch.spec
        state = {k: v for k, v in self.state.items() if k not in (STATE_DETECTORS, STATE_TICKET_EPOCH)}
        state[STATE_DETECTORS] = {str(r): self.state[STATE_DETECTORS][str(r)] for r in ratios(spec)}
        ticket = own_ticket_epoch(spec, self.state[STATE_DETECTORS], epoch)
        if ticket is not None:
            state[STATE_TICKET_EPOCH] = ticket
        if not os.path.exists(paths.spec(branch.run_dir)):
            atomic_write_json(paths.spec(branch.run_dir), spec)
        self._copy_masks(spec, epoch, branch.run_dir)
        ckpt = dict(self.checkpoint_dict(state), phase_epoch=epoch)
        checkpoint.save(ckpt, paths.checkpoint(branch.run_dir))
        atomic_write_json(paths.branch(branch.run_dir), {
            "trunk": self.spec["run_id"], "trunk_dir": os.path.abspath(self.run_dir), "phase_index": 0,
            "phase_epoch": epoch})

    def _copy_masks(self, spec, epoch, run_dir):
        """The masks the run alone would have written: its ratios, up to `epoch`, lines as written."""
        mine = set(ratios(spec))
        rows = [row for row in read_jsonl(paths.masks(self.run_dir))
                if row["epoch"] <= epoch and row["ratio"] in mine]
        with atomic_path(paths.masks(run_dir)) as tmp:
            with open(tmp, "w") as fh:
                fh.writelines(json.dumps(row) + "\n" for row in rows)


def _session_class(branches):
    class TrunkSession(_Session):
        def new_run(self, loop):
            return TrunkRun(self.spec, self.run_dir, self.events, loop, branches)

        def phases(self):
            return METHODS[self.spec["method"]].phases()[:1]

    return TrunkSession


def run_trunk(spec_path, out):
    """`python3 -m experiments run TRUNK_SPEC --out TRUNK_DIR`: train (or resume) the trunk."""
    with open(spec_path) as fh:
        raw = json.load(fh)
    spec = specs.resolve(raw[TRUNK]["spec"])
    branches = [Branch(entry) for entry in raw[TRUNK]["branches"]]
    os.makedirs(out, exist_ok=True)
    return locked(out, lambda: execute(spec, out, _session_class(branches)))
