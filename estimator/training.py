"""Fit every predictor on one hardware's dataset, score them, choose one per phase.

The result, a :class:`Bundle`, is what an artifact version stores and what the service answers
with. Repeats are aggregated first (median per configuration-phase-sample count, spread kept; see
:func:`estimator.dataset.aggregate_repeats`), and cross-validation keeps a configuration's rows
together. Only physically consistent predictors (power × duration) may answer; among them the
served one is the best by leave-one-configuration-out log-space error over both phases (one
predictor answers both phases, so train ≥ test holds per answer), and that choice is itself
scored held-out (``selected@validated``). A family the data never saw is answered by the
family-free physical predictor with the best leave-one-family-out log error, with that scheme's
(wider) interval.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from estimator.dataset import Dataset, aggregate_repeats, dataset_size_check, size_check_summary
from estimator.domain import describe as describe_domain
from estimator.evaluation import (
    OBSERVED_VARIANT,
    SELECTED_VARIANT,
    Evaluation,
    evaluate,
    selection_score,
)
from estimator.predictors import (
    PREDICTORS,
    PhysicalPredictor,
    Predictor,
    UtilisationAware,
    family_key,
)
from estimator.predictors.trees import TreeModel
from joulecast.errors import FailedPrecondition
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd

    from estimator.layerwise.model import LayerSum

logger = logging.getLogger(__name__)

MIN_CONFIGS = 3
"""A phase needs this many measured configurations to be predicted at all."""
MIN_CONFIGS_FOR_TREES = 30
"""Configurations a tree model (gradient boosting, alone or on a roofline) needs before it may
be selected: on fewer its held-out score, the best of several candidates on a handful of
folds, wins by chance. One CPU calibration of 22 configurations chose the roofline with
boosted residuals and answered held-out configurations at 32 % median error where the plain
roofline fitted on the same rows gave 20 %; every shipped predictor rests on 43 or more."""
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
    domain: Mapping[str, object] = field(default_factory=dict)
    """What the training rows cover (:func:`data_domain`, and input shapes from
    :mod:`estimator.domain`); answers outside it warn and widen."""
    dataset: Mapping[str, object] = field(default_factory=dict)
    held_out: pd.DataFrame | None = field(default=None, repr=False)
    """Leave-one-configuration-out predictions of every predictor (not stored in artifacts)."""
    layer_sum: LayerSum | None = field(default=None, repr=False)
    """A fitted :class:`~estimator.layerwise.model.LayerSum` when the hardware's data is per layer: it then
    answers the test phase from the graph's nodes (see ``layer_sum_info`` for why)."""
    layer_sum_info: Mapping[str, object] = field(default_factory=dict)
    """What the manifest says about the layer-sum model: phase it answers, why, CV scores."""
    source: Mapping[str, object] = field(default_factory=dict)
    """The store the rows came from (``estimator.dataset.Dataset.source``): kept in the
    manifest as ``fitted_from``, outside the version's hash (the same fit from a copy of the
    store is the same version)."""

    @property
    def duration_model(self) -> UtilisationAware | None:
        model = self.predictors.get(UtilisationAware.name)
        return model if isinstance(model, UtilisationAware) else None


def fit_bundle(dataset: Dataset, names: list[str] | None = None) -> Bundle:
    """Score (LOCO, LOFO) and fit on all rows every predictor that can be fitted here."""
    frame = dataset.frame
    notes = list(dataset.warnings)
    configs = frame.groupby("phase")["config_id"].nunique()
    phases = tuple(p for p in PHASES if configs.get(p, 0) >= MIN_CONFIGS)
    for p in PHASES:
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
    raw_rows = len(frame)
    repeat_cv = _repeat_cv(frame)
    frame = aggregate_repeats(frame)
    y = frame["energy_per_sample_j"].to_numpy(float)
    fitted: dict[str, Predictor] = {}
    for name in names or list(PREDICTORS):
        try:
            fitted[name] = PREDICTORS[name]().fit(frame, y)
        except FailedPrecondition as exc:
            notes.append(f"{name} not fitted: {exc}")
    for model in fitted.values():
        notes.extend(getattr(model, "notes", ()))
    configs_n = int(frame["config_id"].nunique())
    choosable = {
        n: m
        for n, m in fitted.items()
        if configs_n >= MIN_CONFIGS_FOR_TREES or not isinstance(m, TreeModel)
    } or dict(fitted)  # only tree models asked for: they answer rather than none
    if len(choosable) < len(fitted):
        notes.append(
            f"{configs_n} configurations (fewer than {MIN_CONFIGS_FOR_TREES}): the tree models "
            f"({', '.join(sorted(set(fitted) - set(choosable)))}) are scored, never selected"
        )
    candidates = [n for n, m in choosable.items() if m.physical]
    evaluation = evaluate(frame, list(fitted), candidates)
    selected, fallback, q_log, q_unseen = _choose(evaluation, fitted, phases, choosable)
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
            "rows": raw_rows,
            "aggregated_rows": len(frame),
            "configs": int(frame["config_id"].nunique()),
            "repeat_cv_median": repeat_cv,
            "families": sorted(set(frame["family"])),
            "size_check": size,
        },
        source=dict(dataset.source),
        held_out=evaluation.held_out,
        domain={**data_domain(frame, fitted), **_input_domain(frame)},
    )


def _repeat_cv(frame: pd.DataFrame) -> float | None:
    """Median coefficient of variation of energy over configuration-phases measured ≥ 2 times
    (sample standard deviation, as ``python -m collector.campaign.repeatability`` prints it)."""
    keys = ["config_id", "phase", "batch_size", "samples", "epochs"]
    energy = frame.groupby(keys)["energy_j"]
    cv = (energy.std(ddof=1) / energy.mean())[energy.size() >= 2]
    return float(cv.median()) if len(cv) else None


def data_domain(frame: pd.DataFrame, fitted: Mapping[str, Predictor]) -> dict[str, object]:
    """The ranges the training rows cover: batch sizes, sample counts, FLOPs per phase and
    architecture key, and the power the hardware drew (W). JSON-ready."""
    keys = [
        family_key(str(f), float(s))
        for f, s in zip(frame["family"], frame["recurrent_steps"], strict=True)
    ]
    flops: dict[str, dict[str, list[float]]] = {}
    for phase in PHASES:
        m = (frame["phase"] == phase).to_numpy()
        column = "flops_train" if phase == "train" else "flops_forward"
        for key in sorted({k for k, i in zip(keys, m, strict=True) if i}):
            sel = m & (np.array(keys) == key)
            values = frame.loc[sel, column].to_numpy(float)
            flops.setdefault(phase, {})[key] = [float(values.min()), float(values.max())]
    power = [
        list(model.power_range_w_)
        for model in fitted.values()
        if isinstance(model, PhysicalPredictor)
    ]
    return {
        "batch_size": [int(frame["batch_size"].min()), int(frame["batch_size"].max())],
        "samples": [int(frame["samples"].min()), int(frame["samples"].max())],
        "flops": flops,
        "power_w": power[0] if power else None,
    }


def _log_error(evaluation: Evaluation, name: str) -> float:
    """:func:`selection_score` of ``name``'s leave-one-configuration-out predictions."""
    held = evaluation.held_out
    if held is None:
        return math.inf
    rows = held[held["predictor"] == name]
    if rows.empty:
        return math.inf
    return selection_score(
        rows["measured_j"].to_numpy(float),
        rows["predicted_j"].to_numpy(float),
        rows["phase"].to_numpy(),
    )


def _lofo_log_rmse(evaluation: Evaluation, phases: tuple[str, ...], name: str) -> float:
    values = [evaluation.get("lofo", p, name) for p in phases]
    if any(v is None or not math.isfinite(v.log_rmse) for v in values):
        return math.inf
    return float(np.mean([v.log_rmse for v in values]))  # type: ignore[union-attr]


def _choose(
    evaluation: Evaluation,
    fitted: Mapping[str, Predictor],
    phases: tuple[str, ...],
    choosable: Mapping[str, Predictor],
) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, float]], dict[str, float]]:
    """The selected and the unseen-family predictor (among ``choosable``) and the interval
    half-widths of every fitted one."""
    names = list(fitted)
    pool = list(choosable)
    physical = [n for n in pool if choosable[n].physical] or pool
    best = min(physical, key=lambda n: _log_error(evaluation, n))
    free = [n for n in physical if choosable[n].family_free] or [
        n for n in pool if choosable[n].family_free
    ]
    if "lofo" in evaluation.scores:
        unseen = min(free, key=lambda n: _lofo_log_rmse(evaluation, phases, n))
    else:
        unseen = min(free, key=lambda n: _log_error(evaluation, n))
    selected = {p: best for p in phases}
    fallback = {p: unseen for p in phases}
    q_log: dict[str, dict[str, float]] = {}
    q_unseen: dict[str, float] = {}
    for phase in phases:
        q_log[phase] = {}
        for name in [*names, OBSERVED_VARIANT, SELECTED_VARIANT]:
            s = evaluation.get("loco", phase, name)
            if s is not None and math.isfinite(s.q_log):
                q_log[phase][name] = s.q_log
        base = q_log[phase].get(unseen, math.log(2.0))
        lofo = evaluation.get("lofo", phase, unseen)
        if lofo is not None and math.isfinite(lofo.q_log):
            q_unseen[phase] = max(lofo.q_log, base * UNSEEN_WIDEN)
        else:
            q_unseen[phase] = base * UNSEEN_WIDEN
    return selected, fallback, q_log, q_unseen


def phase_row(features: Mapping[str, object], phase: str) -> pd.DataFrame:
    """A one-row frame of ``features`` (see :func:`estimator.features.run_features`) for a phase."""
    import pandas as pd

    return pd.DataFrame([{**features, "phase": phase}])


def _input_domain(frame: pd.DataFrame) -> dict[str, object]:
    """The input shapes the rows covered (see :mod:`estimator.domain`); batch sizes come from
    :func:`data_domain`."""
    return {k: v for k, v in describe_domain(frame).items() if k != "batch_size"}
