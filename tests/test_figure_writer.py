"""`analysis.output.FigureWriter`: the figures drawn in the background while the report makes its tables,
and the report's own process kept free of matplotlib."""
from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.output import FigureWriter

ROOT = Path(__file__).resolve().parents[1]
LOADED: list[str] = []  # what `_prepare` loaded, in the process that ran it


def _prepare(log: Path) -> None:
    LOADED.append("libraries")
    with log.open("a") as f:
        f.write(f"{os.getpid()}\n")


def _job(i: int) -> tuple[int, int, list[str]]:
    return i * i, os.getpid(), list(LOADED)


def _failing(i: int) -> None:
    raise OSError(f"disk full while writing figure {i}")


@pytest.mark.parametrize("forks", [True, False])
def test_jobs_run_after_one_prepare_and_come_back_in_order(tmp_path, forks):
    log = tmp_path / "prepared"
    with FigureWriter(functools.partial(_prepare, log), forks=forks) as writer:
        writer.draw([functools.partial(_job, i) for i in range(7)])
    assert [r[0] for r in writer.results] == [i * i for i in range(7)]
    assert all(r[2] == ["libraries"] for r in writer.results)  # each job saw what prepare loaded
    prepared_in = [int(p) for p in log.read_text().split()]
    assert len(prepared_in) == 1  # once, not once per job
    workers = {r[1] for r in writer.results}
    if forks:
        assert prepared_in[0] != os.getpid() and os.getpid() not in workers and LOADED == []
    else:
        assert workers == {os.getpid()} == set(prepared_in)
    LOADED.clear()


def test_a_job_that_fails_raises_its_error_in_the_report(tmp_path):
    with pytest.raises(OSError, match="disk full while writing figure 3"):
        with FigureWriter(functools.partial(_prepare, tmp_path / "log"), forks=True) as writer:
            writer.draw([functools.partial(_job, 1), functools.partial(_failing, 3)])


def test_an_error_before_the_jobs_are_handed_over_ends_the_drawing_process(tmp_path):
    before = _children()
    with pytest.raises(ValueError, match="bad record"):
        with FigureWriter(functools.partial(_prepare, tmp_path / "log"), forks=True):
            assert len(_children() - before) == 1  # the drawing process
            raise ValueError("bad record")
    assert not _children() - before


def _children() -> set[int]:
    """This process's live child processes (Linux); a test worker may have others, from other tests."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    found = set()
    for task in tasks.iterdir():
        children = task / "children"
        if children.exists():
            found |= {int(p) for p in children.read_text().split()}
    return found


def test_the_report_makes_its_tables_without_matplotlib():
    """Only the drawing process loads matplotlib (`analysis.figures.prepare`): the report's own process
    imports nothing of it, so that loading it overlaps the records' loading."""
    code = "import sys; import analysis.report; print(sorted(m for m in sys.modules if m.startswith('matplotlib')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _broken_prepare() -> None:
    raise ImportError("No module named 'matplotlib'")


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_drawing_process_that_cannot_prepare_says_why_in_the_report():
    """It ends before reading the jobs, which are larger than the pipe holds (as the runs frame is): the
    report raises its error, and the thread that was writing them fails quietly."""
    with pytest.raises(ImportError, match="No module named 'matplotlib'"):
        with FigureWriter(_broken_prepare, forks=True) as writer:
            writer.draw([functools.partial(len, b"x" * 8_000_000)])
