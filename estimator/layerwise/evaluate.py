"""Scores of the layer-sum model and of the one-constant baseline on the same grouped folds.

Baseline: energy per forward pass = k x FLOPs, one J/FLOP constant ``k`` fitted (median of
energy/FLOPs) on the Conv and Gemm (Linear) training rows of each fold. Scores per operator
type: R² of energy per forward pass (linear space), MAPE and median absolute percentage error.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

BASELINE = "one-constant-j-per-flop"
BASELINE_OPS = ("Conv", "Gemm")


def _score(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(predicted) & (predicted > 0)
    y, p = measured[ok], predicted[ok]
    ape = np.abs(p - y) / y
    ss = float(((y - y.mean()) ** 2).sum())
    return {
        "rows": int(ok.sum()),
        "r2": 1.0 - float(((y - p) ** 2).sum()) / ss if ss > 0 else math.nan,
        "mape_pct": float(ape.mean() * 100),
        "median_ape_pct": float(np.median(ape) * 100),
    }


def baseline_predictions(held_out: pd.DataFrame) -> np.ndarray:
    """Held-out baseline predictions: per fold, k from the other folds' Conv+Gemm rows."""
    predicted = np.full(len(held_out), np.nan)
    folds = held_out["fold"].to_numpy()
    usable = held_out["op_type"].isin(BASELINE_OPS).to_numpy()
    ratio = (held_out["energy_fp_j"] / held_out["flops_fp"]).to_numpy(float)
    for fold in np.unique(folds):
        k = float(np.median(ratio[usable & (folds != fold)]))
        test = folds == fold
        predicted[test] = k * held_out["flops_fp"].to_numpy(float)[test]
    return predicted


def cv_scores(held_out: pd.DataFrame, q_log: dict[str, float]) -> dict[str, object]:
    """Per operator type: layer-sum and baseline scores, configurations, interval half-width."""
    baseline = baseline_predictions(held_out)
    out: dict[str, object] = {}
    for op, part in held_out.groupby("op_type"):
        index = part.index.to_numpy()
        measured = part["energy_fp_j"].to_numpy(float)
        out[str(op)] = {
            "configs": int(part["config_id"].nunique()),
            "folds": int(part["fold"].nunique()),
            "layer-sum": _score(measured, part["predicted_j"].to_numpy(float)),
            BASELINE: _score(measured, baseline[index]),
            "q_log": q_log.get(str(op), math.nan),
        }
    return out
