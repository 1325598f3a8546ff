"""The report: the paper's figures and claims C1-C6, regenerated from a measurement store.

``build_report(db_path, out_dir, hardware=None, cv_csv=None) -> ReportResult``; the CLI is
``estimator.report.cli.register`` (``joulecast report --db DB --out DIR``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from estimator.report.build import ReportResult, build_report
    from estimator.report.claims import FAILS, HOLDS, UNTESTABLE, ClaimResult

__all__ = ["FAILS", "HOLDS", "UNTESTABLE", "ClaimResult", "ReportResult", "build_report"]

_HOMES = {
    "ReportResult": "estimator.report.build",
    "build_report": "estimator.report.build",
    "FAILS": "estimator.report.claims",
    "HOLDS": "estimator.report.claims",
    "UNTESTABLE": "estimator.report.claims",
    "ClaimResult": "estimator.report.claims",
}


def __getattr__(name: str) -> object:
    """Import lazily: ``joulecast --help`` imports ``estimator.report.cli`` and must not pay
    for matplotlib and pandas."""
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(name)
