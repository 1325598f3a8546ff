"""Cross-validation of every predictor: leave one configuration out, leave one family out.

Groups: LOCO holds out every row of one ``config_id`` (both phases, all repeats, all dataset
sizes) at once; LOFO holds out one family. Metrics per predictor and phase on the held-out
predictions: MAPE and median APE (percent), R² of log energy, the log-space error (root mean
square of ``log(measured/predicted)``) and its bias (the mean: > 0 means predicting low), and the
honest coverage and width (high/low) of the 90 % conformal interval (see
:mod:`estimator.intervals`).

MAPE rewards predicting low (predicting 0 J scores 100 %), so the served predictor is chosen by
log-space error (:func:`selection_score`); the choice itself is validated: for each held-out
configuration, the predictor that scored best on the *other* configurations answers
(:data:`SELECTED_VARIANT`), so the selected predictor's score is not the minimum of several noisy
scores.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from estimator.intervals import conformal_quantile, grouped_coverage
from estimator.predictors import OBSERVED_UTIL, PREDICTORS, Predictor, UtilisationAware

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

SCHEMES = {"loco": "config_id", "lofo": "family"}
MAX_EXACT_GROUPS = 100
"""Above this many groups, leave-one-group-out becomes grouped K-fold (a group is never split)."""
GROUPED_FOLDS = 20
OBSERVED_VARIANT = "utilisation-aware@observed-util"
"""Scored only: utilisation-aware fed the measured utilisation of the held-out rows."""
SELECTED_VARIANT = "selected@validated"
"""Scored only (LOCO): per held-out configuration, the candidate best on the others answers."""


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
    log_rmse: float = math.nan
    """Root mean square of ``log(measured) - log(predicted)``."""
    bias_log: float = math.nan
    """Mean of ``log(measured) - log(predicted)``: > 0 predicts low, < 0 high."""
    width_factor: float = math.nan
    """Median high/low ratio of the 90 % interval (``e^(2q)`` with one half-width)."""


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
    q = conformal_quantile(resid)
    return Scores(
        mape_pct=float(ape.mean()),
        median_ape_pct=float(np.median(ape)),
        r2_log=r2,
        coverage_90=grouped_coverage(resid, groups),
        q_log=q,
        n=len(y),
        log_rmse=float(np.sqrt(np.mean(resid**2))),
        bias_log=float(resid.mean()),
        width_factor=math.exp(2 * q) if math.isfinite(q) else math.inf,
    )


def selection_score(y: np.ndarray, pred: np.ndarray, phases: np.ndarray) -> float:
    """What the served predictor is chosen by: log-space RMSE, averaged over the phases.

    Both phases count, because one predictor answers both (which keeps train ≥ test). A
    predictor without a finite positive prediction for some row scores infinity.
    """
    if not np.all(np.isfinite(pred) & (pred > 0)):
        return math.inf
    resid = np.log(y) - np.log(pred)
    return float(np.mean([np.sqrt(np.mean(resid[phases == p] ** 2)) for p in np.unique(phases)]))


def validated_selection(
    y: np.ndarray, preds: dict[str, np.ndarray], groups: np.ndarray, phases: np.ndarray
) -> tuple[np.ndarray, dict[str, int]]:
    """Held-out predictions of the *selection procedure*: for each group, the candidate with the
    best :func:`selection_score` on the other groups' held-out rows predicts that group.

    Returns the predictions and how often each candidate was chosen.
    """
    out = np.full(len(y), np.nan)
    chosen: dict[str, int] = {}
    for g in np.unique(groups):
        inside = groups == g
        best = min(
            preds, key=lambda n: selection_score(y[~inside], preds[n][~inside], phases[~inside])
        )
        out[inside] = preds[best][inside]
        chosen[best] = chosen.get(best, 0) + 1
    return out, chosen


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


def evaluate(
    frame: pd.DataFrame, names: list[str], candidates: list[str] | None = None
) -> Evaluation:
    """LOCO and (with two families or more) LOFO scores of the named predictors.

    ``candidates`` (a subset of ``names``) are those the service may answer with; with two or
    more, LOCO also scores the validated selection among them (:data:`SELECTED_VARIANT`).
    """
    import pandas as pd

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
        preds: dict[str, np.ndarray] = {}
        for name in names:
            pred, observed = out_of_fold(PREDICTORS[name], frame, y, groups)
            preds[name] = pred
            if scheme == "loco":
                held_out.append(
                    pd.DataFrame(
                        {
                            "config_id": frame["config_id"].to_numpy(),
                            "family": frame["family"].to_numpy(),
                            "phase": phases,
                            "batch_size": frame["batch_size"].to_numpy(),
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
        pool = [n for n in (candidates or []) if n in preds]
        if scheme == "loco" and pool:
            n_folds = len(np.unique(fold_of(groups)))
            pred, chosen = validated_selection(y, {n: preds[n] for n in pool}, groups, phases)
            logger.info("validated selection chose %s", chosen)
            for phase in np.unique(phases):
                m = phases == phase
                by_phase.setdefault(str(phase), {})[SELECTED_VARIANT] = replace(
                    metrics(y[m], pred[m], groups[m]), folds=n_folds
                )
        scores[scheme] = by_phase
    return Evaluation(scores, pd.concat(held_out, ignore_index=True) if held_out else None)
