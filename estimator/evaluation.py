"""Cross-validation of every predictor: leave one configuration out, leave one family out.

Groups: LOCO holds out every row of one ``config_id`` (both phases, all repeats, all dataset
sizes) at once; LOFO holds out one family. Metrics per predictor and phase on the held-out
predictions: MAPE and median APE (percent), R² of log energy, and the honest coverage of the
90 % conformal interval (see :mod:`estimator.intervals`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from estimator.intervals import conformal_quantile, grouped_coverage
from estimator.predictors import OBSERVED_UTIL, PREDICTORS, Predictor, UtilisationAware

logger = logging.getLogger(__name__)

SCHEMES = {"loco": "config_id", "lofo": "family"}
MAX_EXACT_GROUPS = 100
"""Above this many groups, leave-one-group-out becomes grouped K-fold (a group is never split)."""
GROUPED_FOLDS = 20
OBSERVED_VARIANT = "utilisation-aware@observed-util"
"""Scored only: utilisation-aware fed the measured utilisation of the held-out rows."""


@dataclass(frozen=True)
class Scores:
    """Held-out quality of one predictor on one phase under one CV scheme."""

    mape_pct: float
    median_ape_pct: float
    r2_log: float
    coverage_90: float
    q_log: float
    """Conformal half-width in log space from these held-out residuals."""
    n: int
    folds: int = 0
    """Number of refits behind these scores (= groups for exact leave-one-out)."""


def fold_of(groups: np.ndarray) -> np.ndarray:
    """The fold of every row: its group, or with more than ``MAX_EXACT_GROUPS`` groups one of
    ``GROUPED_FOLDS`` folds of whole groups (a fixed shuffle, so scores are reproducible).

    Exact leave-one-configuration-out on thousands of configurations (e.g. 3,000 imported
    layer settings) would refit every predictor thousands of times; holding out 5 % of the
    configurations at a time is as honest (no configuration is ever split) and a bit harder.
    """
    names, index = np.unique(groups, return_inverse=True)
    if len(names) <= MAX_EXACT_GROUPS:
        return index
    order = np.random.default_rng(0).permutation(len(names))
    return (order % GROUPED_FOLDS)[index]


def metrics(y: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> Scores:
    """Scores of held-out predictions ``pred`` against measurements ``y`` (both > 0)."""
    ok = np.isfinite(pred) & (pred > 0)
    y, pred, groups = y[ok], pred[ok], groups[ok]
    if len(y) == 0:
        nan = math.nan
        return Scores(nan, nan, nan, nan, math.inf, 0)
    ape = np.abs(pred - y) / y * 100.0
    resid = np.log(y) - np.log(pred)
    logy = np.log(y)
    total = float(np.sum((logy - logy.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / total if total > 0 else math.nan
    return Scores(
        mape_pct=float(ape.mean()),
        median_ape_pct=float(np.median(ape)),
        r2_log=r2,
        coverage_90=grouped_coverage(resid, groups),
        q_log=conformal_quantile(resid),
        n=len(y),
    )


def out_of_fold(
    make: type[Predictor], frame: pd.DataFrame, y: np.ndarray, groups: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Held-out predictions for every row (and, for utilisation-aware, with observed util)."""
    pred = np.full(len(frame), np.nan)
    observed = np.full(len(frame), np.nan) if make is UtilisationAware else None
    folds = fold_of(groups)
    for fold in np.unique(folds):
        test = folds == fold
        model = make().fit(frame[~test], y[~test])
        held = frame[test]
        pred[test] = model.predict(held)
        if observed is not None and model.uses_util_:
            observed[test] = model.predict(held.assign(**{OBSERVED_UTIL: held["gpu_util_mean"]}))
    return pred, observed


@dataclass(frozen=True)
class Evaluation:
    """``scores[scheme][phase][predictor]`` for every scheme that could run, and the
    leave-one-configuration-out predictions behind them (``held_out``: one row per measured
    row and predictor, energies in joules for the row's samples and epochs)."""

    scores: dict[str, dict[str, dict[str, Scores]]]
    held_out: pd.DataFrame | None = None

    def get(self, scheme: str, phase: str, predictor: str) -> Scores | None:
        return self.scores.get(scheme, {}).get(phase, {}).get(predictor)

    def to_json(self) -> dict[str, object]:
        return {
            scheme: {
                phase: {name: _finite(asdict(s)) for name, s in by_name.items()}
                for phase, by_name in by_phase.items()
            }
            for scheme, by_phase in self.scores.items()
        }

    def table(self) -> list[dict[str, object]]:
        """Flat rows (scheme, phase, predictor, metrics) for printing."""
        return [
            {"scheme": scheme, "phase": phase, "predictor": name, **asdict(s)}
            for scheme, by_phase in self.scores.items()
            for phase, by_name in by_phase.items()
            for name, s in by_name.items()
        ]


def _finite(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (v if v is None or math.isfinite(v) else None) for k, v in values.items()}


def evaluate(frame: pd.DataFrame, names: list[str]) -> Evaluation:
    """LOCO and (with two families or more) LOFO scores of the named predictors."""
    y = frame["energy_per_sample_j"].to_numpy(float)
    phases = frame["phase"].to_numpy()
    scores: dict[str, dict[str, dict[str, Scores]]] = {}
    held_out: list[pd.DataFrame] = []
    scale = (frame["samples"] * frame["epochs"]).to_numpy(float)
    for scheme, column in SCHEMES.items():
        groups = frame[column].astype(str).to_numpy()
        if len(np.unique(groups)) < 2:
            logger.info("%s skipped: only one %s", scheme, column)
            continue
        by_phase: dict[str, dict[str, Scores]] = {}
        for name in names:
            pred, observed = out_of_fold(PREDICTORS[name], frame, y, groups)
            if scheme == "loco":
                held_out.append(
                    pd.DataFrame(
                        {
                            "config_id": frame["config_id"].to_numpy(),
                            "family": frame["family"].to_numpy(),
                            "phase": phases,
                            "predictor": name,
                            "measured_j": y * scale,
                            "predicted_j": pred * scale,
                        }
                    )
                )
            for phase in np.unique(phases):
                m = phases == phase
                n_folds = len(np.unique(fold_of(groups)))
                by_phase.setdefault(str(phase), {})[name] = replace(
                    metrics(y[m], pred[m], groups[m]), folds=n_folds
                )
                if observed is not None and np.isfinite(observed[m]).any():
                    by_phase[str(phase)][OBSERVED_VARIANT] = replace(
                        metrics(y[m], observed[m], groups[m]), folds=n_folds
                    )
        scores[scheme] = by_phase
    return Evaluation(scores, pd.concat(held_out, ignore_index=True) if held_out else None)
