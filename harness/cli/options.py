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


METER_SPECS = ("auto, none, ina3221[:VDD_IN+VDD_MUX], jtop, tegrastats, nvml, rapl, wattsup:/dev/ttyUSB0, "
               "um25c:PORT, scpi:tcp://HOST:PORT, lines:PORT (options after ?)")


def meter(p: argparse.ArgumentParser, text: str, several: bool = False, default: str | None = None) -> None:
    """`--meter SPEC`. For a command that reads a config it replaces the config's meters (`meter`, and
    `meters_extra` when `several`: repeat it, the first is the primary); `default` None: the config's."""
    more = (". Repeat it to record several meters at once: the first is the primary (tables), each other "
            "one gets its own trace and energies in the record") if several else ""
    fallback = default or "the config's"
    p.add_argument("--meter", action="append" if several else "store", default=default, metavar="SPEC",
                   help=f"{text}: {METER_SPECS}; default: {fallback}{more}")


def meters_given(args: argparse.Namespace) -> list[str] | None:
    """The `--meter` values as a list (None when not given), for `harness.config.load_specs`."""
    given = args.meter
    return None if given is None else (list(given) if isinstance(given, list) else [given])


def trace(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", type=Path, default=None, metavar="DIR",
                   help="keep the power trace (power.csv, power.meta.json) in this folder")
