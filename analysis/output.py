"""Report output written atomically (through `hw.fileio`), so a reader never sees half a file, and the
figures drawn while the report loads its records and makes its tables.

Drawing is most of a report's time (every tick label of every panel is laid out, once per format), and
each figure is built and drawn alone. `FigureWriter` forks one process for them before matplotlib is
loaded: it loads the drawing libraries once while the report loads the records, then receives the jobs and
forks a worker per core, each taking the next figure as it finishes one (a worker's caches stay warm from
one figure to the next). Meanwhile the report makes its tables, which need no matplotlib. Where forking is
not the platform's way (not Linux) or there is one core, the figures are drawn in turn.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

import pandas as pd

from hw.fileio import atomic_path, atomic_write

FORMATS = ("png", "pdf")  # REPORT.md shows the PNG and links the PDF


def write_text(path: Path, text: str) -> Path:
    atomic_write(path, text)
    return Path(path)


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def save_figure(fig, stem: Path, formats=FORMATS) -> list[Path]:
    """Write `fig` in each format: one draw each, as the figures have fixed margins (`plotting.figure`);
    with a layout engine attached, every `savefig` would lay the figure out and draw it twice."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt)
        paths.append(path)
    return paths


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


_JOBS: Sequence[Callable[[], Any]] = ()  # the drawing process's jobs, inherited by the workers it forks


def _run(i: int) -> Any:
    return _JOBS[i]()


def _draw(prepare: Callable[[], None], workers: int, conn) -> None:
    """The drawing process: prepare, receive the jobs (None: there are none), run them on `workers` forked
    workers, and send back their results in order, or the first error for the parent to raise."""
    global _JOBS
    try:
        prepare()
        jobs = conn.recv()
        if jobs is None:
            return
        _JOBS = jobs
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            conn.send((pool.map(_run, range(len(jobs)), chunksize=1), None))
    except BaseException as err:  # noqa: BLE001 (every failure goes back to the parent, which raises it)
        _send_error(conn, err)


def _send_error(conn, err: BaseException) -> None:
    try:
        conn.send((None, err))
    except (OSError, EOFError):
        pass  # the report is gone: there is nobody to tell
    except Exception:  # an error that does not pickle
        conn.send((None, RuntimeError(f"drawing the figures: {err!r}")))


class FigureWriter:
    """`with FigureWriter(prepare) as writer:` starts the process that draws, which runs `prepare()` (loads
    what drawing needs) while the caller goes on; `writer.draw(jobs)` hands it the jobs (each builds a
    figure and writes it; they must pickle), which run in the background. Leaving the block waits for them:
    `results` then holds what they returned, in order, and the first error a job met is raised (an
    `OSError` stays one)."""

    def __init__(self, prepare: Callable[[], None], forks: bool | None = None) -> None:
        can_fork = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
        self.forks = (can_fork and _cores() > 1) if forks is None else forks
        self.prepare = prepare
        self.results: list = []
        self._drawing: tuple | None = None
        self._sending: threading.Thread | None = None

    def __enter__(self) -> FigureWriter:
        if self.forks:
            # the child inherits unwritten buffers: empty them first, or they would be written twice
            sys.stdout.flush()
            sys.stderr.flush()
            ctx = multiprocessing.get_context("fork")
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_draw, args=(self.prepare, _cores(), theirs))
            proc.start()
            theirs.close()
            self._drawing = (proc, mine)
        return self

    def draw(self, jobs: Sequence[Callable[[], Any]]) -> None:
        if self._drawing is None:
            self.prepare()
            self.results = [job() for job in jobs]
            return
        # The jobs are pickled here and written from a thread: the pipe takes them only as fast as the
        # drawing process reads, which it does once prepared, and the tables need not wait for that.
        data = ForkingPickler.dumps(list(jobs))
        self._sending = threading.Thread(target=self._send, args=(data,), daemon=True)
        self._sending.start()

    def _send(self, data: bytes) -> None:
        try:
            self._drawing[1].send_bytes(data)
        except OSError:
            pass  # the drawing process ended before it read them: `__exit__` reads why

    def __exit__(self, *exc) -> None:
        if self._drawing is None:
            return
        proc, conn = self._drawing
        try:
            if self._sending is None:
                conn.send(None)
                return
            self._sending.join()
            results, err = conn.recv()
        except (EOFError, BrokenPipeError):
            results, err = None, RuntimeError("the process drawing the figures ended without writing them")
        finally:
            conn.close()
            proc.join()
        if err is not None:
            if exc[0] is None:
                raise err
            return
        self.results = results
