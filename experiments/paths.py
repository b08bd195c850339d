"""Every file of a run folder, and where run folders live: the one owner of these names.

Both sides import it (the runner on the board, the harness and the analysis on the laptop), so a file
name is written here and nowhere else; the power trace's names are `hw.trace`'s (its format), re-exported. A run folder on the target holds what the runner writes; the
laptop's copy under `results/runs/<run_id>/` holds the fetched files plus the laptop's own
(`RUN_INFO`, `LAPTOP_POWER`, `LAPTOP_CLOCK`, `RECORD`).
"""
import os

from hw.fileio import TMP_SUFFIX  # noqa: F401 (a half-written file's suffix, re-exported)
from hw.trace import POWER_CSV, POWER_META, SECONDARY_POWER  # noqa: F401 (the trace format's, re-exported)

# written by the runner on the target
SPEC = "spec.json"
EVENTS = "events.jsonl"
MASKS = "masks.jsonl"
RUNNER_LOG = "runner.log"
RUNNER_PID = "runner.pid"
LOCK = ".lock"
CHECKPOINTS = "checkpoints"
TICKETS = "tickets"
BRANCH = "branch.json"  # a run branched from a trunk: which trunk, at which epoch (written by the trunk)

# written by the laptop into its copy of the run folder
RUN_INFO = "run.json"
LAPTOP_POWER = "laptop-power"
LAPTOP_CLOCK = "laptop-clock.json"
LAPTOP_SESSION = "session-%d.csv"  # one raw trace per sampling session, inside LAPTOP_POWER
RECORD = "record.json"

# the results folder on the laptop, and the report `ebt report` writes into it
RUNS = "runs"
TRUNKS = "trunks"  # beside RUNS, on the target and on the laptop: shared first phases (`experiments.trunk`)
BOARDS = "boards"  # beside runs/: each host's saved power mode and clocks (hw.board), its idle temperature
TRUNK_KEY = "trunk"  # a trunk's spec.json: {"run_id": ..., TRUNK_KEY: {"spec": ..., "branches": [...]}}
RESULTS = "results"
REPORT = "REPORT.md"
CALIBRATIONS = "calibrations"  # stored meter agreements (`ebt meters agree`), one JSON file each

# fetched only on request (large), and never (the runner's own bookkeeping)
BULKY = (CHECKPOINTS, TICKETS)
NEVER_FETCH = (LOCK, RUNNER_PID)


def spec(run_dir):
    return os.path.join(str(run_dir), SPEC)


def events(run_dir):
    return os.path.join(str(run_dir), EVENTS)


def power_csv(run_dir):
    return os.path.join(str(run_dir), POWER_CSV)


def secondary_power_csv(run_dir, n):
    """The trace of secondary meter `n` (from 1), its meta beside it as for power.csv."""
    return os.path.join(str(run_dir), SECONDARY_POWER % n)


def laptop_power(run_dir, n=0):
    """The laptop's raw traces of its primary meter (n = 0) or of secondary meter n, one per session."""
    return os.path.join(str(run_dir), LAPTOP_POWER if n == 0 else "%s-%d" % (LAPTOP_POWER, n))


def laptop_clock(run_dir, n=0):
    """The clock alignments of a laptop meter's sessions: beside the primary's raw folder, inside a
    secondary meter's."""
    if n == 0:
        return os.path.join(str(run_dir), LAPTOP_CLOCK)
    return os.path.join(laptop_power(run_dir, n), LAPTOP_CLOCK)


def masks(run_dir):
    return os.path.join(str(run_dir), MASKS)


def runner_log(run_dir):
    return os.path.join(str(run_dir), RUNNER_LOG)


def runner_pid(run_dir):
    return os.path.join(str(run_dir), RUNNER_PID)


def lock(run_dir):
    return os.path.join(str(run_dir), LOCK)


def checkpoint(run_dir):
    """The resumable checkpoint, rewritten after every epoch and phase."""
    return os.path.join(str(run_dir), CHECKPOINTS, "last.pt")


def ticket(run_dir, ratio):
    """The Early-Bird ticket drawn at pruning ratio `ratio`."""
    return os.path.join(str(run_dir), TICKETS, "eb-p%g.pt" % ratio)


def branch(run_dir):
    """The link of a run branched from a trunk (`experiments.trunk`)."""
    return os.path.join(str(run_dir), BRANCH)


def initial_weights(run_dir):
    """The initial weights a lottery ticket rewinds to."""
    return os.path.join(str(run_dir), TICKETS, "init.pt")


def fetched(name, checkpoints=False):
    """Whether the top-level entry `name` of a run folder is copied to the laptop."""
    if name in NEVER_FETCH or name.endswith(TMP_SUFFIX):
        return False
    return checkpoints or name not in BULKY


def ebt_home():
    """The suite's root on a machine: `EBT_HOME`, else `~/ebt`."""
    return os.environ.get("EBT_HOME") or os.path.join(os.path.expanduser("~"), "ebt")


def runs_root(home):
    """Where run folders live under a target's root (`~/ebt/runs/<run_id>/`)."""
    return os.path.join(str(home), RUNS)


def boards_dir(home):
    """Where `hw.board` keeps what each host's board was before a run changed its mode or clocks
    (`~/ebt/boards/<host>.json`), beside the run folders rather than among them."""
    return os.path.join(str(home), BOARDS)


def run_dir(home, run_id):
    return os.path.join(runs_root(home), run_id)


def trunk_dir(home, trunk_id):
    """A trunk's folder under a target's root (`~/ebt/trunks/<trunk_id>/`), beside the run folders."""
    return os.path.join(str(home), TRUNKS, trunk_id)


def trunk_beside(run_dir, trunk_id):
    """The folder of trunk `trunk_id` on the target whose run folder `run_dir` is (`<root>/runs/<id>`)."""
    return trunk_dir(os.path.dirname(os.path.dirname(os.path.abspath(str(run_dir)))), trunk_id)


def code_root(home):
    """Where shipped code lives under a target's root (`~/ebt/code/<digest>/`)."""
    return os.path.join(str(home), "code")


def results_runs(results):
    """The laptop's folder of run copies: `results/runs/`."""
    return os.path.join(str(results), RUNS)


def results_trunk(results, trunk_id):
    """The laptop's copy of one trunk: `results/trunks/<trunk_id>/`."""
    return os.path.join(str(results), TRUNKS, trunk_id)


def calibrations(results):
    """The laptop's stored meter agreements: `results/calibrations/`."""
    return os.path.join(str(results), CALIBRATIONS)


def calibration(results, name):
    """One stored meter agreement: `results/calibrations/<name>.json`."""
    return os.path.join(calibrations(results), name + ".json")


def results_run(results, run_id):
    """The laptop's copy of one run: `results/runs/<run_id>/`."""
    return os.path.join(results_runs(results), run_id)
