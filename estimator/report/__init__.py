"""The report: the paper's figures and claims C1-C6, regenerated from a measurement store.

``build_report(db_path, out_dir, hardware=None, cv_csv=None) -> ReportResult``; the CLI is
``estimator.report.cli.register`` (``joulecast report --db DB --out DIR``).
"""

from estimator.report.build import ReportResult, build_report
from estimator.report.claims import FAILS, HOLDS, UNTESTABLE, ClaimResult

__all__ = ["FAILS", "HOLDS", "UNTESTABLE", "ClaimResult", "ReportResult", "build_report"]
