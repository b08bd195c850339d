"""`ebt report`: regenerate every figure and table (and results/REPORT.md) from the run records."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="regenerate figures, tables and REPORT.md from run records",
                              description=__doc__)
    p.add_argument("--runs", default="results/runs/*/record.json",
                   help="glob of record.json files or run folders (default: %(default)s)")
    p.add_argument("--out", default="results", type=Path,
                   help="writes OUT/figures/, OUT/tables/ and OUT/REPORT.md (default: %(default)s)")
    p.add_argument("--include-partial", action="store_true",
                   help="also use partial runs in tables and figures (they are always listed as flagged)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so `ebt --help` and other subcommands do not pay for pandas/matplotlib.
    from analysis.report import build_report

    try:
        report = build_report(args.runs, args.out, args.include_partial)
    except OSError as exc:
        # e.g. an --out that cannot be written: say which path, not a traceback; nothing half-written stays.
        log.error("cannot write the report under %s: %s", args.out, exc)
        return 1
    log.info("%d records (%d used): %d figures, %d tables -> %s", report.n_records, report.n_used,
             len(report.figures), len(report.tables), report.out_dir / "REPORT.md")
    print(report.out_dir / "REPORT.md")
    return 0
