"""Trunks and branches: the first phase of several runs trained once, each run going on from its epoch.

Runs whose first phase has the same identity (`Phase.identity`: its kind and the values of the spec keys
that determine it) train that phase identically, epoch for epoch: an Early-Bird search does not depend
on the ratio it is cut at or on the epoch its ticket is drawn, nor dense training on what a method does
after it. A training phase says how to share it (`Phase.trunk_changes`, `cut`, `tickets_due`,
`branch_state`). A trunk trains it once (a search tracking the detectors of every ratio its branches
watch), and when it passes a branch's cut (the epoch where that run's own phase would end: a search's
fixed draw epoch or its ticket's detection, else the budget) it writes into the branch's run folder
exactly what the run alone would have had there: the checkpoint after that epoch (model, optimiser, the
run's own state, best top-1, phase info; every epoch is seeded from the spec, so nothing else carries
over), its tickets and masks, and `branch.json` naming the trunk. The branch is then started as any
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
from .methods import METHODS
from .runner import Run, _Session, execute, locked

TRUNK = paths.TRUNK_KEY
PREFIX = "trunk-"
# Keys that do not change what a phase computes but how the board runs it and how it is measured: the
# trunk's measured epochs are billed to every branch, so its branches must agree on these too.
MEASURED_UNDER = ("meter", "meters_extra", "meter_where", "meters_extra_where", "meter_rate_hz", "power_mode",
                  "clocks", "cooldown_c", "cooldown_max_s")


def shared_phase(spec):
    """The run's first phase when it can be shared with other runs, else None."""
    first = METHODS[spec["method"]].phases()[0]
    return first if getattr(first, "branchable", False) else None


def trunk_id(spec):
    """The id of the trunk the run can branch from (a digest of its first phase's identity), or None."""
    phase = shared_phase(spec)
    if phase is None:
        return None
    body = {"phase": phase.identity(spec), "measured_under": {k: spec.get(k) for k in MEASURED_UNDER}}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return PREFIX + hashlib.sha256(text.encode()).hexdigest()[:12]


def trunk_spec(tid, branches):
    """The trunk's spec.json for `branches` [(spec, run_dir)], all of trunk `tid`: the first branch's spec
    with what the shared phase needs to serve them all (`Phase.trunk_changes`)."""
    first = branches[0][0]
    changes = shared_phase(first).trunk_changes([spec for spec, _ in branches])
    base = dict(first, run_id=tid, **changes)
    return {"run_id": tid, TRUNK: {"spec": base, "branches": [{"spec": s, "run_dir": d} for s, d in branches]}}


def is_trunk(spec_path):
    try:
        with open(spec_path) as fh:
            return TRUNK in json.load(fh)
    except (OSError, ValueError):
        return False


class Branch:
    def __init__(self, entry):
        self.spec = specs.resolve(entry["spec"])
        self.run_dir = entry["run_dir"]

    @property
    def seeded(self):
        """Its link is written (last), or it has run on its own: either way not to be written again."""
        return os.path.exists(paths.branch(self.run_dir)) or os.path.exists(paths.events(self.run_dir))


class TrunkRun(Run):
    """A trunk's live run: after each epoch of the shared phase it saves the tickets its branches would
    have saved, and seeds every branch whose cut it is; the phase ends once all are seeded."""

    def __init__(self, spec, run_dir, events, loop, branches):
        super().__init__(spec, run_dir, events, loop)
        self.branches = branches

    def epoch_end(self, phase, epoch):
        for b in self.branches:
            if b.seeded:
                continue
            for r in phase.tickets_due(b.spec, self.state, epoch):
                self.save_ticket(r, epoch, run_dir=b.run_dir)
            if phase.cut(b.spec, self.state, epoch):
                self._seed(phase, b, epoch)

    def ends_phase(self, epoch):
        return all(b.seeded for b in self.branches)

    def _seed(self, phase, branch, epoch):
        """Write the branch's folder as its own run would have it after `epoch`; the link last."""
        state = phase.branch_state(branch.spec, self.state, epoch)
        if not os.path.exists(paths.spec(branch.run_dir)):
            atomic_write_json(paths.spec(branch.run_dir), branch.spec)
        if os.path.exists(paths.masks(self.run_dir)):
            self._copy_masks(phase, branch.spec, epoch, branch.run_dir)
        ckpt = dict(self.checkpoint_dict(state), phase_epoch=epoch)
        checkpoint.save(ckpt, paths.checkpoint(branch.run_dir))
        atomic_write_json(paths.branch(branch.run_dir), {
            "trunk": self.spec["run_id"], "trunk_dir": os.path.abspath(self.run_dir), "phase_index": 0,
            "phase_epoch": epoch})

    def _copy_masks(self, phase, spec, epoch, run_dir):
        """The masks the run alone would have written: its ratios, up to `epoch`, lines as written."""
        mine = set(phase.ratios(spec))
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
