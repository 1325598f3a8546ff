"""Small statistics the claims use: rank correlation, affine fits, power separation.

Every function returns NaN instead of raising when there are too few points or no spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Correlation:
    rho: float
    p_greater: float
    n: int


@dataclass(frozen=True)
class AffineFit:
    """energy = slope x x + intercept; ``r2`` is the coefficient of determination."""

    slope: float
    intercept: float
    r2: float
    n: int


def _clean(x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    return xa[keep], ya[keep]


def spearman(x: object, y: object) -> Correlation:
    """Spearman rho and its one-sided p-value for a positive association."""
    xa, ya = _clean(x, y)
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return Correlation(math.nan, math.nan, n)
    res = stats.spearmanr(xa, ya, alternative="greater")
    return Correlation(float(res.statistic), float(res.pvalue), n)


def pearson(x: object, y: object) -> float:
    xa, ya = _clean(x, y)
    if xa.size < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return math.nan
    return float(np.corrcoef(xa, ya)[0, 1])


def affine(x: object, y: object) -> AffineFit:
    xa, ya = _clean(x, y)
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0:
        return AffineFit(math.nan, math.nan, math.nan, n)
    slope, intercept = np.polyfit(xa, ya, 1)
    residual = ya - (slope * xa + intercept)
    total = float(np.sum((ya - ya.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else math.nan
    return AffineFit(float(slope), float(intercept), r2, n)


def affine_log(x: object, y: object) -> AffineFit:
    """energy = slope x x + intercept fitted for relative error, ``r2`` in log space.

    An ordinary affine fit's R² is decided by the largest configurations (a 100 kJ model's
    residual outweighs every 10 J one); weighting each point by 1/y² fits relative error, and
    R² of log(y) against log(fit) judges every configuration alike. Points with y <= 0 are
    dropped (no log); a fit that goes non-positive at a point scores that point as missed badly.
    """
    xa, ya = _clean(x, y)
    keep = ya > 0
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 3 or np.ptp(xa) == 0:
        return AffineFit(math.nan, math.nan, math.nan, n)
    design = np.column_stack([xa, np.ones(n)]) / ya[:, None]
    (slope, intercept), *_ = np.linalg.lstsq(design, np.ones(n), rcond=None)
    fitted = np.maximum(slope * xa + intercept, ya.min() * 1e-3)
    logy = np.log(ya)
    total = float(np.sum((logy - logy.mean()) ** 2))
    residual = float(np.sum((logy - np.log(fitted)) ** 2))
    r2 = 1.0 - residual / total if total > 0 else math.nan
    return AffineFit(float(slope), float(intercept), r2, n)


def separation_auc(high: object, low: object) -> float:
    """P(a value of ``high`` exceeds a value of ``low``), ties counting half (Mann-Whitney AUC).

    1.0 means the two sets do not overlap at all, 0.5 means they are fully mixed.
    """
    a = np.asarray(high, dtype=float)
    b = np.asarray(low, dtype=float)
    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return math.nan
    greater = (a[:, None] > b[None, :]).sum()
    ties = (a[:, None] == b[None, :]).sum()
    return float((greater + 0.5 * ties) / (a.size * b.size))


def fmt(value: float, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}"
