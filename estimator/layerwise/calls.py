"""Per-call cost of one operator type: the energy of a forward pass at zero work.

A layer's energy per forward pass grows with its work (multiply-accumulates, elements moved);
what is left when the work goes to zero is what every call pays whatever its size (Python's
module call, the dispatcher, allocating the output). It is the intercept of a straight line of
energy on work, fitted on an operator's smaller layers (where the intercept is a visible part of
the energy, and where one cost per unit of work holds better than across six decades) with
relative weights (each layer's error counts as a fraction of its energy, so that the large
layers do not decide the intercept), and never below zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMALL_QUANTILE = 0.3
"""Layers whose work is at most this quantile of their operator's work fix the line."""
MIN_LAYERS = 3


@dataclass(frozen=True)
class CallCost:
    """One operator's line: ``energy_j = per_call_j + j_per_work x work``, fitted on
    ``layers`` layers; ``median_share`` is the per-call cost's median share of those layers'
    energy (how much a per-call correction could move them)."""

    op: str
    per_call_j: float
    j_per_work: float
    layers: int
    median_share: float


def fit_call_cost(
    op: str, work: np.ndarray, energy_j: np.ndarray, small_quantile: float = SMALL_QUANTILE
) -> CallCost:
    """The per-call cost of ``op`` from its layers' work and energy per forward pass (J).

    Work-free layers (ReLU counted in elements has work; a Flatten has none) give their median
    energy as the per-call cost."""
    work = np.asarray(work, float)
    energy_j = np.asarray(energy_j, float)
    ok = np.isfinite(work) & np.isfinite(energy_j) & (energy_j > 0)
    work, energy_j = work[ok], energy_j[ok]
    if len(energy_j) == 0:
        return CallCost(op, 0.0, 0.0, 0, 0.0)
    if not np.any(work > 0):
        cost = float(np.median(energy_j))
        return CallCost(op, cost, 0.0, len(energy_j), 1.0)
    small = work <= np.quantile(work, small_quantile)
    if small.sum() < MIN_LAYERS:
        small = np.argsort(work)[: min(MIN_LAYERS, len(work))]
    x, y = work[small], energy_j[small]
    weights = 1.0 / y  # rows scaled by 1/energy: least squares on relative errors
    design = np.column_stack([np.ones_like(x), x]) * weights[:, None]
    (intercept, slope), *_ = np.linalg.lstsq(design, y * weights, rcond=None)
    if intercept < 0 or slope < 0:
        # a line through the origin (no per-call cost) or, with a negative slope, a constant
        ratio = x * weights
        slope = max(float(ratio.sum() / np.dot(ratio, ratio)), 0.0)
        intercept = 0.0 if slope > 0 else float(np.median(y))
    share = float(np.median(intercept / y))
    return CallCost(op, float(intercept), float(slope), len(y), share)
