"""The `ebt` command line. Each subcommand group lives in its own module exposing `register(subparsers)`."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

from ..errors import exit_code

COMMAND_MODULES = [
    "harness.cli.run",
    "harness.cli.runs",
    "harness.cli.report",
    "harness.cli.meters",
    "harness.cli.doctor",
    "harness.cli.plan",
]

QUIET_LIBRARIES = ("paramiko", "fabric", "invoke")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ebt",
        description="Early-Bird energy suite: train, measure and report Early-Bird ticket experiments.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.INFO
    if sys.stderr.isatty():
        # log lines print above the live progress line instead of through it
        from rich.logging import RichHandler

        from ..console import console
        logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]",
                            handlers=[RichHandler(console=console, show_path=False)])
    else:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for name in QUIET_LIBRARIES:  # the SSH libraries' own INFO lines (sessions opened, closed) only with -v
        logging.getLogger(name).setLevel(logging.NOTSET if args.verbose else logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        logging.getLogger("ebt").error("interrupted; a run started on a target goes on there (`ebt status`)")
        return 130
    except Exception as err:
        # the one error policy: an error raised on purpose says what is wrong and how to fix it, so show
        # that line; anything else is a bug, so show the traceback
        code = exit_code(err)
        if code is None or args.verbose:
            raise
        # a user's mistake needs no traceback, so the hint to see one is not offered
        logging.getLogger("ebt").error("%s", err)
        return code


if __name__ == "__main__":
    sys.exit(main())
