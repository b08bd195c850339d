"""The project's error classes and the one CLI policy that turns them into a line and an exit code.

Every error raised on purpose derives from `EbtError` (or is one of the device side's own, which cannot
import the laptop side: `experiments.spec.SpecError`, `hw.meters.MeterError`). Its message names the
problem and the fix. `harness/cli/__init__.py` is the only place that catches them: it prints the message
as one line (the traceback only with `-v`) and exits with `exit_code`.
"""
from __future__ import annotations

EXIT_FAILED = 1  # the command ran and something it did failed (a run failed, a target dropped)
EXIT_USAGE = 2   # bad input: nothing was started


class EbtError(Exception):
    """An error the user can act on; the message says what is wrong and how to fix it."""

    exit_code = EXIT_FAILED


class UsageError(EbtError):
    """Bad input (a config, a flag, a meter spec, a target URL): found before anything starts."""

    exit_code = EXIT_USAGE


class UnknownRun(UsageError):
    """No run of that id under the results folder."""


def exit_code(err: BaseException) -> int | None:
    """The exit code of an error raised on purpose, None for anything else (a bug: show the traceback)."""
    if isinstance(err, EbtError):
        return err.exit_code
    from experiments.spec import SpecError
    from hw.meters.base import MeterError, MeterSpecError, MeterUnavailable
    if isinstance(err, (SpecError, MeterSpecError, MeterUnavailable)):
        return EXIT_USAGE
    if isinstance(err, (MeterError, ConnectionError)):
        return EXIT_FAILED
    return None
