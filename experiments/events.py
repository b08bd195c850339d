"""The run's event log (`events.jsonl`) and the one vocabulary of events, statuses and run states.

One JSON object a line, append-only, each with wall time `t` and `event`. Append-only writes with a flush
per event mean a crash leaves at most one torn last line, which readers skip; the laptop follows the file
by byte offset. Every module that reads a log (the runner on resume, the laptop's follower, `ebt status`,
the record builder, the analysis) takes the names below from here, and turns a log into a run state only
through `outcome`.

Events and their fields:

- ``run_start``: run_id, method, resumed, pid, device, meter, params_dense, channels_dense, train_samples,
  phases (names, in order). One per runner session.
- ``resume``: phase_index, phase_epoch (where the checkpoint put the run back).
- ``branch``: trunk, trunk_dir, phase_index, phase_epoch (the run's first session starts from a trunk's
  checkpoint after that many epochs of its first phase, trained once for several runs; the run's log
  does not repeat them).
- ``phase_start``: phase, index, epochs (planned), done (epochs already done), model.
- ``epoch``: phase, epoch, epochs, global_epoch, loss, top1, top5, lr, train_seconds, eval_seconds,
  mask_distances (Early-Bird phases).
- ``eb_drawn``: ratio, epoch (the ticket's epoch), ticket (its file, null for a ratio only watched),
  forced (drawn at a fixed epoch), and for the run's own ratio late and note (a ticket at or after the
  last lr decay, and what the retrain does about it).
- ``eb_missing``: ratio, epochs, note (the search ended without a ticket at this ratio).
- ``checkpoint``: phase_index, phase_epoch.
- ``phase_end``: phase, index, epochs, model, info.
- ``board_set``: requested, before, set (power modes as "NAME (ID)"), clocks, locked_before, cooldown,
  error (experiments.conditions: after run_start, before the first phase; phase_start/phase_end then carry
  ``board``: power_mode, temperatures_c, residency, clocks_locked).
- ``board_restored``: mode, locked, error, owner (just before run_end: what the board was put back to; also
  written by the next runner when it restores what a killed one left).
- ``run_end``: status (``ok``, ``stopped``, ``failed``), error, sampler, and for ``ok`` accuracy, params,
  channels, model, eb.
"""
import json
import os
import time

from hw.fileio import read_jsonl

RUN_START = "run_start"
RESUME = "resume"
BRANCH = "branch"  # a run's first session starting from a trunk's checkpoint (`experiments.trunk`)
PHASE_START = "phase_start"
EPOCH = "epoch"
EB_DRAWN = "eb_drawn"
EB_MISSING = "eb_missing"
CHECKPOINT = "checkpoint"
PHASE_END = "phase_end"
RUN_END = "run_end"
BOARD_SET = "board_set"
BOARD_RESTORED = "board_restored"

# `run_end` statuses, written by the runner
OK = "ok"            # every phase done
STOPPED = "stopped"  # SIGTERM: the last checkpoint is on disk, resumable
FAILED = "failed"    # an error; resumable from the last checkpoint once its cause is fixed

# run states, as seen by whoever reads the log (the three statuses above, plus:)
RUNNING = "running"          # no run_end yet and the runner is alive
LOST = "lost"                # no run_end and the runner is gone (killed, crashed, board rebooted)
DETACHED = "detached"        # the laptop lost contact for too long; the run may go on there
UNREACHABLE = "unreachable"  # the target did not answer this time
PENDING = "pending"          # queued by a scheduler, not started yet

ENDED = (OK, STOPPED, FAILED)
RESUMABLE = (STOPPED, FAILED, LOST)

# a record's status: the run_end status, or `partial` when the log has no run_end
PARTIAL = "partial"


class EventLog:
    def __init__(self, path):
        self.path = str(path)
        self._fh = open(self.path, "a")

    def emit(self, event, durable=False, **fields):
        row = {"t": time.time(), "event": event}
        row.update(fields)
        self._fh.write(json.dumps(row, sort_keys=True) + "\n")
        self._fh.flush()
        if durable:
            os.fsync(self._fh.fileno())
        return row

    def close(self):
        self._fh.close()


def read_events(path):
    """All complete events of an `events.jsonl` (a torn last line is skipped)."""
    return read_jsonl(path)


def last_end(events):
    """The last `run_end` of the log when no runner session started after it, else None."""
    for e in reversed(events):
        if e.get("event") == RUN_END:
            return e
        if e.get("event") == RUN_START:
            return None
    return None


def outcome(events, alive=None):
    """The run's state from its log: the status of its final `run_end`; else `running` while the runner
    is alive (or when `alive` is unknown: None), `lost` when it is not."""
    end = last_end(events)
    if end is not None:
        return end.get("status") or FAILED
    if alive is None or alive:
        return RUNNING
    return LOST


def record_status(events):
    """A record's status: the final `run_end` status, or `partial` when the log ends without one."""
    end = last_end(events)
    return end.get("status") or FAILED if end is not None else PARTIAL
