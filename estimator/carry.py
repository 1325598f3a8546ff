"""Few-shot calibration of a CPU: a predictor of another CPU, carried here by a few rows.

A reference suite on a new CPU gives a few dozen rows: too few to fit per-hardware predictors
that generalise (fitted alone on the suite, held-out configurations erred by 36-62 % on this
project's VM), and the prior CPU's predictor is off by its own factor per operator kind. So the
prior (the served predictor of the CPU with the most rows, e.g. the shipped ``cpu-amd-epyc``)
answers, and :class:`estimator.predictors.carried.Carried` scales its answer by a correction
fitted here: a log-linear ridge on the graph's FLOP shares per kind, the phase and the batch
size, each term held at zero (the prior as it is) by a Gaussian prior of width
:data:`SIGMAS`, so that a term the rows cannot inform stays at the prior. Leaving one
configuration out sizes the interval, never narrower than the prior's own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from estimator.artifacts import Published, load_current, publish
from estimator.canary import require_servable
from estimator.dataset import Dataset, aggregate_repeats, from_store
from estimator.evaluation import fold_of, metrics
from estimator.intervals import conformal_quantile
from estimator.predictors.base import frame_rows
from estimator.predictors.carried import GROUPS, TERMS, Carried, design
from estimator.predictors.physical import RooflineDuration
from estimator.published import list_hardware
from estimator.training import Bundle
from joulecast.errors import FailedPrecondition
from joulecast.hardware import AmbiguousGpuName, find_gpu

log = logging.getLogger(__name__)

NOISE_LOG = 0.25
"""Width (natural log) of a row's departure from the corrected prior that no term explains: the
prior's own held-out error on its CPU (0.12 for the shipped EPYC predictor), the repeat spread
of a window (0.07), and what the suite's networks do that the prior's never did."""
SIGMAS: Mapping[str, float] = {
    "base": 3.0,
    **dict.fromkeys(GROUPS, 0.125),
    "test": 0.075,
}
"""Prior width (natural log) of each correction term. The machine's overall factor is free (CPUs
of one machine kind differed up to 2.5x). A group of costs is held at it by half the noise: on
this project's VM, carried from the shipped EPYC store by the suite, twelve configurations of
the four families that no plan holds were answered within 10.3 % (median) at this ratio, 12 %
with groups twice or four times as free, 13-14 % with them half as free or with the overall
factor alone (the prior as it is: 74 %)."""
POWER_SIGMA = 1.0
"""Prior width of the power ratio's log (many rows inform it: every one has a power)."""
MAX_CONFIG_PHASES = 20
"""A CPU whose rows span fewer configuration-phases is carried from a prior, not fitted alone
(the CPU's reference suite has 44, the GPU's 18: a budget cut or a few imported rows fall
below it)."""
MIN_CONFIGS = 3
"""Configurations needed to hold one out and size the interval on the rows themselves."""
FEW_WIDEN = math.log(2.0)
"""Widening of the prior's interval when the rows are too few to be held out."""


@dataclass(frozen=True)
class Carry:
    """A carried bundle and the rows it rests on: per aggregated row ``config_id``, ``phase``,
    ``batch_size``, ``measured_j``, ``prior_j`` (the prior's answer), ``loco_j`` (the carried
    answer of a fit without the row's configuration; NaN when too few) and ``fitted_j``, all
    energy per sample per epoch."""

    bundle: Bundle
    prior: Published
    held_out: pd.DataFrame


def is_cpu(hardware: str) -> bool:
    """True unless the catalog knows ``hardware`` as a GPU."""
    try:
        return find_gpu(hardware) is None
    except AmbiguousGpuName:
        return False


def choose_prior(artifacts_dir: Path, exclude: str | None = None) -> Published | None:
    """The served CPU predictor fitted on the most whole-network rows (not ``exclude``; not a
    layer-sum predictor, whose data is single layers), or None."""
    best: Published | None = None
    for hardware in list_hardware(artifacts_dir):
        if hardware == exclude or not is_cpu(hardware):
            continue
        published = load_current(artifacts_dir, hardware)
        bundle = published.bundle
        if bundle.layer_sum is not None or Carried.name in bundle.predictors:
            continue
        if not all(isinstance(bundle.predictors[bundle.selected[p]], RooflineDuration)
                   for p in bundle.phases):  # fmt: skip
            continue
        rows = int(bundle.dataset.get("rows", 0))  # type: ignore[call-overload]
        if best is None or rows > int(best.bundle.dataset.get("rows", 0)):  # type: ignore[call-overload]
            best = published
    return best


def prior_for_few(dataset: Dataset, artifacts_dir: Path) -> Published | None:
    """The prior to carry to ``dataset`` when its rows are a CPU's few (a suite, not a sweep)
    and ``artifacts_dir`` serves another CPU's predictor; None when they are to be fitted
    alone."""
    if not is_cpu(dataset.hardware) or not is_few(dataset):
        return None
    return choose_prior(artifacts_dir, exclude=dataset.hardware)


def is_few(dataset: Dataset) -> bool:
    """True when ``dataset``'s rows span fewer than :data:`MAX_CONFIG_PHASES` configuration-
    phases (a suite, not a sweep)."""
    frame = dataset.frame
    return len(frame.groupby(["config_id", "phase", "batch_size"])) < MAX_CONFIG_PHASES


def _inner(prior: Published) -> dict[str, RooflineDuration]:
    bundle = prior.bundle
    out: dict[str, RooflineDuration] = {}
    for phase in bundle.phases:
        model = bundle.predictors[bundle.selected[phase]]
        if not isinstance(model, RooflineDuration):
            raise FailedPrecondition(
                f"the prior {bundle.hardware}'s {phase} predictor {model.name} is not an "
                "additive roofline: its costs cannot be split by kind"
            )
        out[phase] = model
    return out


def _prior_answers(frame: pd.DataFrame, inner: Mapping[str, RooflineDuration]) -> pd.DataFrame:
    """Per row: the prior's power (W) and energy per sample (J), and the correction's inputs."""
    power, energy, inputs = [], [], []
    for row in frame_rows(frame):
        p, d = inner[row.phase].predict_parts_row(row)
        power.append(p)
        energy.append(p * d)
        inputs.append(design(inner[row.phase], row.features, row.phase))
    out = pd.DataFrame(np.array(inputs), columns=list(TERMS), index=frame.index)
    out["prior_power_w"] = power
    out["prior_j"] = energy
    return out


def _ridge(x: np.ndarray, y: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """The most probable coefficients of ``y ≈ x · c`` with errors of width :data:`NOISE_LOG`
    and each coefficient held at 0 by width ``sigmas`` (ridge regression)."""
    a = np.vstack([x / NOISE_LOG, np.diag(1.0 / sigmas)])
    b = np.concatenate([y / NOISE_LOG, np.zeros(len(sigmas))])
    return np.linalg.lstsq(a, b, rcond=None)[0]


@dataclass(frozen=True)
class _Fit:
    coef: dict[str, float]
    log_power: float


def _fit(x: np.ndarray, log_ratio: np.ndarray, log_power_ratio: np.ndarray) -> _Fit:
    coef = _ridge(x, log_ratio, np.array([SIGMAS[t] for t in TERMS]))
    power = _ridge(np.ones((len(log_power_ratio), 1)), log_power_ratio, np.array([POWER_SIGMA]))
    return _Fit(dict(zip(TERMS, (float(c) for c in coef), strict=True)), float(power[0]))


def _apply(fit: _Fit, x: np.ndarray) -> np.ndarray:
    """The fitted log ratio of each row."""
    return x @ np.array([fit.coef[t] for t in TERMS])


def carry(dataset: Dataset, prior: Published) -> Carry:
    """The bundle of ``dataset``'s hardware: ``prior``'s predictors carried by its rows."""
    inner = _inner(prior)
    frame = aggregate_repeats(dataset.frame)
    frame = frame[frame["phase"].isin(inner)].reset_index(drop=True)
    if frame.empty:
        raise FailedPrecondition(
            f"{dataset.hardware}: no rows of a phase the prior {prior.bundle.hardware} answers"
        )
    answers = _prior_answers(frame, inner)
    measured = frame["energy_per_sample_j"].to_numpy(float)
    measured_power = frame["energy_j"].to_numpy(float) / frame["duration_s"].to_numpy(float)
    x = answers[list(TERMS)].to_numpy(float)
    log_ratio = np.log(measured / answers["prior_j"].to_numpy(float))
    log_power = np.log(measured_power / answers["prior_power_w"].to_numpy(float))
    fitted = _fit(x, log_ratio, log_power)

    configs = frame["config_id"].to_numpy()
    prior_j = answers["prior_j"].to_numpy(float)
    loco = np.full(len(frame), np.nan)
    if len(set(configs)) >= MIN_CONFIGS:
        for fold in np.unique(fold_of(configs)):
            held = fold_of(configs) == fold
            part = _fit(x[~held], log_ratio[~held], log_power[~held])
            loco[held] = prior_j[held] * np.exp(_apply(part, x[held]))
    held_out = pd.DataFrame(
        {
            "config_id": configs,
            "family": frame["family"],
            "phase": frame["phase"],
            "batch_size": frame["batch_size"],
            "measured_j": measured,
            "prior_j": answers["prior_j"],
            "loco_j": loco,
            "fitted_j": prior_j * np.exp(_apply(fitted, x)),
        }
    )
    model = Carried.build(inner, fitted.coef, fitted.log_power)
    bundle = _bundle(dataset, prior, frame, model, held_out, fitted)
    return Carry(bundle, prior, held_out)


def _phase_scores(part: pd.DataFrame, q: float) -> dict[str, float | int]:
    """Held-out scores of the carried answers in the keys every predictor's scores have, with
    the served half-width ``q`` (pooled over both phases) and the prior's own median error."""
    measured = part["measured_j"].to_numpy(float)
    residual = np.log(measured / part["loco_j"].to_numpy(float))
    scores = metrics(measured, part["loco_j"].to_numpy(float), part["config_id"].to_numpy())
    scores = replace(
        scores,
        folds=int(part["config_id"].nunique()),
        q_log=q,
        coverage_90=float(np.mean(np.abs(residual) <= q)),
        width_factor=math.exp(2 * q),
    )
    prior_ape = np.median(np.abs(part["prior_j"].to_numpy(float) / measured - 1)) * 100
    return {**asdict(scores), "prior_median_ape_pct": float(prior_ape)}


def _bundle(
    dataset: Dataset,
    prior: Published,
    frame: pd.DataFrame,
    model: Carried,
    held_out: pd.DataFrame,
    fitted: _Fit,
) -> Bundle:
    base = prior.bundle
    phases = tuple(p for p in base.phases if p in set(frame["phase"]))
    pooled = np.log(held_out["measured_j"] / held_out["loco_j"]).to_numpy(float)
    q_log: dict[str, dict[str, float]] = {}
    q_unseen: dict[str, float] = {}
    loco: dict[str, dict[str, object]] = {}
    for phase in phases:
        prior_q = base.q_log[phase][base.selected[phase]]
        part = held_out[(held_out["phase"] == phase) & held_out["loco_j"].notna()]
        if len(part):
            # Both phases' held-out errors: a suite has one row per configuration-phase, too
            # few for a quantile of one phase alone.
            q = max(prior_q, conformal_quantile(pooled[np.isfinite(pooled)]))
            loco[phase] = {Carried.name: _phase_scores(part, q)}
        else:
            q = prior_q + FEW_WIDEN
        q_log[phase] = {Carried.name: q}
        q_unseen[phase] = q + max(0.0, base.q_log_unseen[phase] - prior_q)
    rows = len(dataset.frame)
    overall = math.exp(fitted.coef["base"])
    note = (
        f"carried from {base.hardware} (version {prior.version}, {base.dataset.get('rows')} "
        f"rows) by {rows} rows of {frame['config_id'].nunique()} configurations measured on "
        f"{dataset.hardware}: energy = the prior's answer x {overall:.3g} x a factor per "
        "operator kind, phase and batch size; power x "
        f"{math.exp(fitted.log_power):.3g}"
    )
    # The answers are the prior's shape scaled to these rows: an estimate if either is one
    # (a RAPL-measured suite carrying a predictor of CPU-time estimates answers partly from
    # the estimates' costs per operator kind).
    sources = dict.fromkeys([dataset.energy_source, base.energy_source])
    return Bundle(
        hardware=dataset.hardware,
        energy_source="+".join(sources),
        energy_is_estimate=dataset.energy_is_estimate or base.energy_is_estimate,
        dataset_sha256=dataset.sha256,
        predictors={Carried.name: model},
        phases=phases,
        families={p: tuple(base.families[p]) for p in phases},
        selected=dict.fromkeys(phases, Carried.name),
        fallback=dict.fromkeys(phases, Carried.name),
        q_log=q_log,
        q_log_unseen=q_unseen,
        scores={"loco": loco} if loco else {},
        notes=(note, *dataset.warnings),
        domain=dict(base.domain),
        dataset={
            "sha256": dataset.sha256,
            "rows": rows,
            "aggregated_rows": len(frame),
            "configs": int(frame["config_id"].nunique()),
            "families": sorted(set(frame["family"])),
            "prior": {
                "hardware": base.hardware,
                "version": prior.version,
                "rows": base.dataset.get("rows"),
                "energy_source": base.energy_source,
            },
            "correction": {**fitted.coef, "log_power": fitted.log_power},
        },
        source=dict(dataset.source),
        held_out=held_out,
    )


@dataclass(frozen=True)
class CarriedPublished:
    """What :func:`carry_and_publish` published, and the fit behind it."""

    published: Published
    carry: Carry


def carry_and_publish(
    store_path: Path, hardware: str | None, artifacts_dir: Path
) -> CarriedPublished:
    """Carry the best CPU prior under ``artifacts_dir`` to ``hardware``'s rows of the store and
    publish the result (kept aside, :class:`~estimator.canary.CanaryFailed`, if it cannot
    serve). FailedPrecondition when no CPU prior is served there."""
    dataset = from_store(store_path, hardware)
    prior = choose_prior(artifacts_dir, exclude=dataset.hardware)
    if prior is None:
        raise FailedPrecondition(
            f"{artifacts_dir} serves no CPU predictor to carry to {dataset.hardware} (a "
            "whole-network predictor of another CPU, fitted on a sweep)"
        )
    done = carry(dataset, prior)
    published = publish(done.bundle, artifacts_dir, check=require_servable)
    return CarriedPublished(published, done)
