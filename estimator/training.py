"""Fit every predictor on one hardware's dataset, score them, choose one per phase.

The result, a :class:`Bundle`, is what an artifact version stores and what the service answers
with. Selection per phase is by leave-one-configuration-out MAPE; a family the data never saw is
answered by the family-free predictor with the best leave-one-family-out MAPE, with that
scheme's (wider) interval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from estimator.dataset import Dataset, dataset_size_check, size_check_summary
from estimator.domain import describe as describe_domain
from estimator.evaluation import OBSERVED_VARIANT, Evaluation, evaluate
from estimator.predictors import PREDICTORS, Predictor, UtilisationAware
from joulecast.errors import FailedPrecondition

logger = logging.getLogger(__name__)

MIN_CONFIGS = 3
"""A phase needs this many measured configurations to be predicted at all."""
UNSEEN_WIDEN = 1.5
"""Interval widening for an unseen family when LOFO could not be run (one family only)."""


@dataclass(frozen=True, eq=False)
class Bundle:
    """The fitted predictors of one hardware and how the service uses them."""

    hardware: str
    energy_source: str
    energy_is_estimate: bool
    dataset_sha256: str
    predictors: Mapping[str, Predictor]
    phases: tuple[str, ...]
    families: Mapping[str, tuple[str, ...]]
    selected: Mapping[str, str]
    fallback: Mapping[str, str]
    q_log: Mapping[str, Mapping[str, float]]
    """Conformal half-width per phase and predictor (LOCO), log space."""
    q_log_unseen: Mapping[str, float]
    """Half-width per phase for the fallback on an unseen family."""
    scores: Mapping[str, object]
    notes: tuple[str, ...] = field(default=())
    dataset: Mapping[str, object] = field(default_factory=dict)
    held_out: pd.DataFrame | None = field(default=None, repr=False)
    domain: Mapping[str, object] = field(default_factory=dict)
    """Batch sizes and input shapes of the training rows (:mod:`estimator.domain`)."""
    """Leave-one-configuration-out predictions of every predictor (not stored in artifacts)."""

    @property
    def duration_model(self) -> UtilisationAware | None:
        model = self.predictors.get(UtilisationAware.name)
        return model if isinstance(model, UtilisationAware) else None


def fit_bundle(dataset: Dataset, names: list[str] | None = None) -> Bundle:
    """Score (LOCO, LOFO) and fit on all rows every predictor that can be fitted here."""
    frame = dataset.frame
    notes = list(dataset.warnings)
    configs = frame.groupby("phase")["config_id"].nunique()
    phases = tuple(p for p in ("train", "test") if configs.get(p, 0) >= MIN_CONFIGS)
    for p in ("train", "test"):
        if p not in phases:
            notes.append(
                f"{p}: {int(configs.get(p, 0))} configuration(s) measured, {MIN_CONFIGS} needed; "
                f"no {p} predictions"
            )
    if not phases:
        raise FailedPrecondition(
            f"hardware {dataset.hardware!r}: too few measured configurations to fit "
            f"({dict(configs)}; need {MIN_CONFIGS} per phase)"
        )
    frame = frame[frame["phase"].isin(phases)].reset_index(drop=True)
    y = frame["energy_per_sample_j"].to_numpy(float)
    fitted: dict[str, Predictor] = {}
    for name in names or list(PREDICTORS):
        try:
            fitted[name] = PREDICTORS[name]().fit(frame, y)
        except FailedPrecondition as exc:
            notes.append(f"{name} not fitted: {exc}")
    for model in fitted.values():
        notes.extend(getattr(model, "notes", ()))
    evaluation = evaluate(frame, list(fitted))
    selected, fallback, q_log, q_unseen = _choose(evaluation, fitted, phases)
    families = {p: tuple(sorted(set(frame.loc[frame["phase"] == p, "family"]))) for p in phases}
    size = size_check_summary(dataset_size_check(dataset))
    return Bundle(
        hardware=dataset.hardware,
        energy_source=dataset.energy_source,
        energy_is_estimate=dataset.energy_is_estimate,
        dataset_sha256=dataset.sha256,
        predictors=fitted,
        phases=phases,
        families=families,
        selected=selected,
        fallback=fallback,
        q_log=q_log,
        q_log_unseen=q_unseen,
        scores=evaluation.to_json(),
        notes=tuple(dict.fromkeys(notes)),
        dataset={
            "sha256": dataset.sha256,
            "rows": len(frame),
            "configs": int(frame["config_id"].nunique()),
            "families": sorted(set(frame["family"])),
            "size_check": size,
        },
        held_out=evaluation.held_out,
        domain=describe_domain(frame),
    )


def _mape(evaluation: Evaluation, scheme: str, phase: str, name: str) -> float:
    s = evaluation.get(scheme, phase, name)
    return s.mape_pct if s is not None and math.isfinite(s.mape_pct) else math.inf


def _choose(
    evaluation: Evaluation, fitted: Mapping[str, Predictor], phases: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, float]], dict[str, float]]:
    selected: dict[str, str] = {}
    fallback: dict[str, str] = {}
    q_log: dict[str, dict[str, float]] = {}
    q_unseen: dict[str, float] = {}
    for phase in phases:
        names = list(fitted)
        selected[phase] = min(names, key=lambda n: _mape(evaluation, "loco", phase, n))
        free = [n for n in names if fitted[n].family_free]
        scheme = "lofo" if "lofo" in evaluation.scores else "loco"
        fallback[phase] = min(free, key=lambda n: _mape(evaluation, scheme, phase, n))
        q_log[phase] = {}
        for name in [*names, OBSERVED_VARIANT]:
            s = evaluation.get("loco", phase, name)
            if s is not None and math.isfinite(s.q_log):
                q_log[phase][name] = s.q_log
        base = q_log[phase].get(fallback[phase], math.log(2.0))
        lofo = evaluation.get("lofo", phase, fallback[phase])
        if lofo is not None and math.isfinite(lofo.q_log):
            q_unseen[phase] = max(lofo.q_log, base * UNSEEN_WIDEN)
        else:
            q_unseen[phase] = base * UNSEEN_WIDEN
    return selected, fallback, q_log, q_unseen


def phase_row(features: Mapping[str, object], phase: str) -> pd.DataFrame:
    """A one-row frame of ``features`` (see :func:`estimator.features.run_features`) for a phase."""
    return pd.DataFrame([{**features, "phase": phase}])
