"""The options several commands share, defined once so that one folder or setting has one flag name."""
from __future__ import annotations

import argparse
from pathlib import Path

from experiments import paths

TARGETS = "local (default), ssh://[user@]host[:port][?python=PATH&root=DIR] or slurm://LOGIN?partition=P"


def results(p: argparse.ArgumentParser, text: str = "results folder") -> None:
    p.add_argument("--results", type=Path, default=Path(paths.RESULTS), help=f"{text} (default results/)")


def target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="local", help=TARGETS)
    p.add_argument("--trust-new-host", action="store_true",
                   help="accept and record an SSH host key not yet in known_hosts")


def overrides(p: argparse.ArgumentParser, text: str = "override a config key (repeatable)") -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=text)
