"""`joulecast report`: figures and claims of the paper, regenerated from a measurement store."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="draw the paper's figures and test its claims C1-C6 on a measurement store",
    )
    p.add_argument("--db", required=True, help="SQLite measurement store")
    p.add_argument("--out", required=True, help="output folder (REPORT.md, PNG figures, CSVs)")
    p.add_argument("--hardware", help="hardware id (required when the store holds several)")
    p.add_argument(
        "--cv",
        help="cross-validation CSV (config_id, family, phase, measured_j, predicted_j) "
        "for the predicted-vs-measured figure",
    )
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from estimator.report.build import build_report  # matplotlib loads only when used

    result = build_report(args.db, args.out, hardware=args.hardware, cv_csv=args.cv)
    print(f"report: {result.report_path}")
    for claim in result.claims:
        print(f"  {claim.claim}: {claim.verdict}")
    for name, note in result.skipped.items():
        print(f"  skipped {name}: {note}")
    return 0
