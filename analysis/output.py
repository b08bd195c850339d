"""Report output written atomically (through `hw.fileio`), so a reader never sees half a file.

Drawing is most of a report's time (every tick label of every panel is laid out, once per format), and
each figure is built and drawn alone, so `FigureWriter` does that in forked worker processes, one per core,
while the report goes on with its tables; where forking is not the platform's way (not Linux) or there is one core,
it draws them in turn.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any, Callable

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


def _warm() -> None:
    """Load once, before forking, what every worker would otherwise load for itself: the PDF backend (with
    its font subsetter) and the default font."""
    import matplotlib.backends.backend_pdf  # noqa: F401
    from matplotlib.font_manager import FontProperties, findfont, get_font

    get_font(findfont(FontProperties()))


def _job(job: Callable[[], Any], conn) -> None:
    """In the worker: run the job, then send its result, or the error for the parent to raise."""
    try:
        conn.send((job(), None))
    except BaseException as err:  # noqa: BLE001 (every failure goes back to the parent, which raises it)
        try:
            conn.send((None, err))
        except Exception:  # an error that does not pickle
            conn.send((None, RuntimeError(f"{job!r}: {err!r}")))


class FigureWriter:
    """`submit(job)` runs `job()` (build a figure and write it), in a forked worker where there are cores
    to spare; leaving the `with` block waits for every job. `results` holds what the jobs returned, in the
    order they were submitted; the first error a worker met is raised (an `OSError` stays one)."""

    def __init__(self, workers: int | None = None) -> None:
        forks = sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()
        self.workers = (workers or _cores()) if forks else 1
        if self.workers > 1:
            _warm()
        self.results: list = []
        self._running: list[tuple] = []
        self._error: BaseException | None = None

    def __enter__(self) -> FigureWriter:
        return self

    def submit(self, job: Callable[[], Any]) -> None:
        if self.workers <= 1:
            self.results.append(job())
            return
        while len(self._running) >= self.workers:
            self._wait(self._running.pop(0))
        # the child inherits unwritten buffers: empty them first, or they would be written twice
        sys.stdout.flush()
        sys.stderr.flush()
        ctx = multiprocessing.get_context("fork")
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_job, args=(job, send), daemon=True)
        proc.start()
        send.close()
        self.results.append(None)
        self._running.append((proc, receive, len(self.results) - 1))

    def _wait(self, running: tuple) -> None:
        proc, receive, slot = running
        try:
            result, err = receive.recv()
        except EOFError:
            result, err = None, RuntimeError("a process drawing a figure ended without writing it")
        finally:
            receive.close()
            proc.join()
        self.results[slot] = result
        if err is not None and self._error is None:
            self._error = err

    def __exit__(self, *exc) -> None:
        while self._running:
            self._wait(self._running.pop(0))
        if self._error is not None and exc[0] is None:
            raise self._error
