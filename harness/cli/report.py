"""`ebt report`: regenerate every figure and table (and REPORT.md) from the run records."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from experiments import paths

from ..errors import EbtError, UsageError
from . import options

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="regenerate figures, tables and REPORT.md from run records",
                              description=__doc__)
    options.results(p, "results folder: reads its runs/*/record.json")
    p.add_argument("--runs", default=None, metavar="GLOB",
                   help="read these record files or run folders instead (default: RESULTS/runs/*/record.json)")
    p.add_argument("--out", type=Path, default=None,
                   help="write figures/, tables/ and REPORT.md here (default: the results folder)")
    p.add_argument("--include-partial", action="store_true",
                   help="also use partial runs in tables and figures (they are always listed as flagged)")
    p.add_argument("--exclude-flagged", action="store_true",
                   help="leave out runs whose Early-Bird search found no ticket or a late one (by default they "
                        "count in their cells, marked)")
    p.add_argument("--max-slowdown", type=float, default=1.2, metavar="X",
                   help="power-mode table: the least-energy mode among those at most X times the fastest "
                        "mode's time (default 1.2)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    # Imported here so `ebt --help` and other subcommands do not pay for pandas/matplotlib.
    from analysis.records import default_pattern, find_records
    from analysis.report import build_report

    if args.runs is None and not Path(args.results).is_dir():
        raise UsageError(f"no results folder {args.results}: run `ebt run CONFIG` first, or point --results "
                         "at the folder that holds runs/")
    pattern = args.runs or default_pattern(args.results)
    out = args.out or args.results
    if args.max_slowdown < 1.0:
        raise UsageError(f"--max-slowdown {args.max_slowdown:g} is below 1: no mode can be faster than the "
                         "fastest; give 1 or more (1.2 allows 20% more time)")
    if not find_records(pattern):
        # an empty report would replace a good one; nothing is written
        raise UsageError(f"no run records match {pattern}: nothing to report, {Path(out) / paths.REPORT} left as "
                         "it is; run `ebt run CONFIG` first, or give --runs/--results that hold records")
    try:
        report = build_report(pattern, out, args.include_partial, args.exclude_flagged,
                              max_slowdown=args.max_slowdown)
    except OSError as exc:
        raise EbtError(f"cannot write the report under {out}: {exc}; give a writable folder with --out") from exc
    page = report.out_dir / paths.REPORT
    log.info("%d records (%d used): %d figures, %d tables -> %s", report.n_records, report.n_used,
             len(report.figures), len(report.tables), page)
    print(page)
    return 0
