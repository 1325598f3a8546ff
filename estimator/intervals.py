"""Split-conformal prediction intervals in log space, calibrated on cross-validation residuals.

A residual is ``log(measured) - log(predicted)``. The interval of a prediction ``ŷ`` is
``[ŷ·e^-q, ŷ·e^q]`` where ``q`` is the conformal quantile of the absolute residuals: with ``n``
residuals, the ``ceil((n+1)(1-alpha))``-th smallest. Residuals come from rows left out of the
fit, so the interval holds on new rows about ``1-alpha`` of the time.
"""

from __future__ import annotations

import math

import numpy as np

LEVEL = 0.90
"""Nominal coverage of every interval joulecast reports."""


def conformal_quantile(residuals: np.ndarray, level: float = LEVEL) -> float:
    """Half-width ``q`` (log space) of a ``level`` interval from held-out residuals."""
    r = np.sort(np.abs(np.asarray(residuals, float)))
    r = r[np.isfinite(r)]
    n = len(r)
    if n == 0:
        return math.inf
    k = math.ceil((n + 1) * level)
    return float(r[min(k, n) - 1])


def grouped_coverage(residuals: np.ndarray, groups: np.ndarray, level: float = LEVEL) -> float:
    """Coverage measured honestly: each group's rows against ``q`` from the *other* groups."""
    residuals = np.abs(np.asarray(residuals, float))
    groups = np.asarray(groups)
    covered = np.zeros(len(residuals), bool)
    for g in np.unique(groups):
        inside = groups == g
        q = conformal_quantile(residuals[~inside], level)
        covered[inside] = residuals[inside] <= q
    return float(covered.mean()) if len(covered) else math.nan


def interval(energy_j: float, q_log: float) -> tuple[float, float]:
    """(low, high) in joules around a positive ``energy_j`` for half-width ``q_log``."""
    return energy_j * math.exp(-q_log), energy_j * math.exp(q_log)
