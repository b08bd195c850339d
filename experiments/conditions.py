"""The board's conditions around a run: the runner's calls into `hw.board`.

`prepare` runs before the run folder exists (restores what a killed runner left on this board, checks that
the spec's `power_mode` and `clocks` can be set); `Board.take` sets them before the first phase and logs
`board_set` (with the cooldown); `Board.release` puts the board back after `run_end` and logs
`board_restored`; `snapshot` is what each phase_start/phase_end carries as `board`. The saved state lives
in the target root's boards folder (`paths.boards_dir`: `~/ebt/boards/`, beside `runs/`), shared by every
run on the board.
"""
import os
import sys

from hw import board

from . import events as ev
from . import paths


def boards_folder(run_dir):
    """`<root>/boards` for a run folder `<root>/runs/<run_id>`."""
    return paths.boards_dir(os.path.dirname(os.path.dirname(os.path.abspath(str(run_dir)))))


def prepare(spec, run_dir):
    """None when the run may start; else one line saying why not and the fix. Changes no file of the run."""
    folder = boards_folder(run_dir)
    try:
        restored = board.recover(folder)
        if restored is not None:
            sys.stderr.write("restored the board after the interrupted run %s: %s\n"
                             % (restored.get("owner"), restored.get("error") or restored.get("mode")))
            if restored.get("error"):
                return "could not restore the board after an interrupted run: %s" % restored["error"]
        board.check(spec.get("power_mode"), spec.get("clocks"))
    except board.BoardError as err:
        return str(err)
    return None


class Board:
    """One runner session's hold on the board."""

    def __init__(self, spec, run_dir, events):
        self.spec, self.events = spec, events
        self.folder = boards_folder(run_dir)
        self.taken = False

    def take(self):
        spec = self.spec
        self.taken = True
        try:
            found = board.take(self.folder, spec.get("power_mode"), spec.get("clocks"), owner=spec.get("run_id"))
        except board.BoardError as err:
            self.events.emit(ev.BOARD_SET, requested=spec.get("power_mode"), clocks=spec.get("clocks"),
                             error=str(err), durable=True)
            raise
        found["cooldown"] = board.cool_down(self.folder, spec.get("cooldown_c"), spec.get("cooldown_max_s") or 0)
        self.events.emit(ev.BOARD_SET, error=None, durable=True, **found)

    def release(self):
        if not self.taken:
            return
        restored = board.release(self.folder, only_pid=os.getpid())
        if restored is not None:
            self.events.emit(ev.BOARD_RESTORED, durable=True, **restored)


def snapshot():
    return board.snapshot()
