"""The estimator's Python API for the server: load published predictors, predict, fit, publish.

Transport-agnostic: the gRPC servicer converts messages to a :class:`GraphProfile` and run
counts, calls :meth:`PredictorRegistry.predict`, and converts the :class:`EnergyPrediction` back.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from estimator.artifacts import Published, list_hardware, load_current
from estimator.dataset import from_store
from estimator.domain import WIDEN as DOMAIN_WIDEN
from estimator.domain import outside
from estimator.evaluation import OBSERVED_VARIANT
from estimator.features import ServeRow, run_features, serve_rows
from estimator.intervals import interval
from estimator.predictors import UtilisationAware
from estimator.training import Bundle, fit_bundle
from joulecast.errors import FailedPrecondition, InvalidArgument, JoulecastError, NotFound
from joulecast.graph import GraphProfile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhaseEstimate:
    """Predicted energy of one phase (all samples, all epochs) in joules, with a 90 % interval.

    ``duration_s`` is the predicted wall time in seconds, None where the training rows had none.
    ``predictor`` names the predictor that answered.
    """

    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float | None
    predictor: str


@dataclass(frozen=True)
class EnergyPrediction:
    """Train and test estimates of one model on one hardware (None: no data for that phase)."""

    train: PhaseEstimate | None
    test: PhaseEstimate | None
    hardware: str
    predictor_version: str
    energy_source: str
    energy_is_estimate: bool
    warnings: tuple[str, ...]


def _check_counts(batch_size: int, samples: int, epochs: int, util: float | None) -> None:
    for name, value in (("batch_size", batch_size), ("samples", samples), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"{name} must be a positive integer, got {value!r}")
    if util is not None and not (isinstance(util, int | float) and 0.0 <= util <= 100.0):
        raise InvalidArgument(f"observed_gpu_util must be a percentage in [0, 100], got {util!r}")


def estimate(
    published: Published,
    profile: GraphProfile,
    *,
    batch_size: int,
    samples: int,
    epochs: int,
    observed_gpu_util: float | None = None,
) -> EnergyPrediction:
    """Predict with one loaded predictor version (see :meth:`PredictorRegistry.predict`)."""
    _check_counts(batch_size, samples, epochs, observed_gpu_util)
    bundle = published.bundle
    warnings: list[str] = []
    if bundle.energy_is_estimate:
        warnings.append(
            f"energy is ESTIMATED, not measured: the predictor of {bundle.hardware} was trained "
            f"on {bundle.energy_source} energy"
        )
    warnings.extend(profile.warnings)
    features = run_features(
        profile, phase="train", batch_size=batch_size, samples=samples, epochs=epochs
    )
    rows = serve_rows(features, tuple(p for p in ("train", "test") if p in bundle.phases))
    extrapolations = outside(bundle.domain, features)
    warnings.extend(
        f"out of the measured domain of {bundle.hardware}: {why}; the interval is widened"
        for why in extrapolations
    )
    count = float(samples) * float(epochs)
    answers: dict[str, PhaseEstimate | None] = {}
    for phase in ("train", "test"):
        if phase not in bundle.phases:
            warnings.append(
                f"no {phase} measurements for hardware {bundle.hardware}; no {phase} prediction"
            )
            answers[phase] = None
            continue
        answers[phase] = _phase(
            bundle,
            rows[phase],
            count,
            observed_gpu_util,
            warnings,
            DOMAIN_WIDEN ** len(extrapolations),
        )
    return EnergyPrediction(
        train=answers["train"],
        test=answers["test"],
        hardware=bundle.hardware,
        predictor_version=published.version,
        energy_source=bundle.energy_source,
        energy_is_estimate=bundle.energy_is_estimate,
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _phase(
    bundle: Bundle,
    row: ServeRow,
    count: float,
    observed_util: float | None,
    warnings: list[str],
    widen: float = 1.0,
) -> PhaseEstimate:
    """One phase's estimate: numpy rows and the predictors' ``predict_row`` (no pandas)."""
    phase = row.phase
    family = row.family
    name = bundle.selected[phase]
    q = bundle.q_log[phase].get(name, math.log(2.0))
    util_model = bundle.duration_model
    if family not in bundle.families.get(phase, ()):
        name = bundle.fallback[phase]
        q = bundle.q_log_unseen[phase]
        warnings.append(
            f"family {family!r} is not in the {phase} data of {bundle.hardware} "
            f"(seen: {', '.join(bundle.families.get(phase, ()))}); answered by the family-free "
            f"predictor {name} with a wider interval"
        )
    if observed_util is not None:
        if util_model is not None and util_model.uses_util_:
            name = UtilisationAware.name
            q = bundle.q_log[phase].get(OBSERVED_VARIANT, bundle.q_log[phase].get(name, q))
            row = row.with_observed_util(float(observed_util))
            warnings.append(
                f"{phase}: answered by utilisation-aware with the observed GPU utilisation "
                f"{observed_util:g} %"
            )
        else:
            warnings.append(
                "observed GPU utilisation ignored: this predictor has no GPU utilisation"
            )
    if name == UtilisationAware.name and util_model is not None and not util_model.uses_util_:
        warnings.extend(util_model.notes)
    predictor = bundle.predictors[name]
    duration_per_sample: float | None = None
    if util_model is not None and predictor is util_model:
        per_sample, duration_per_sample = util_model.predict_row_and_duration(row)
    else:
        per_sample = predictor.predict_row(row)
        if util_model is not None:
            duration_per_sample = util_model.predict_duration_row(row)
    if not (math.isfinite(per_sample) and per_sample > 0):
        raise FailedPrecondition(f"{name} produced no {phase} prediction for this graph")
    energy = per_sample * count
    low, high = interval(energy, q * widen)
    duration = None
    if duration_per_sample is not None:
        seconds = duration_per_sample * count
        duration = seconds if np.isfinite(seconds) else None
    return PhaseEstimate(energy, low, high, duration, name)


class PredictorRegistry:
    """The CURRENT predictor version of every hardware under ``artifacts_dir/predictors``.

    Thread-safe: :meth:`reload` loads a new version fully, then swaps it in under a lock, so
    :meth:`predict` keeps answering with the old version meanwhile.
    """

    def __init__(self, artifacts_dir: Path) -> None:
        self._dir = Path(artifacts_dir)
        self._lock = threading.Lock()
        self._loaded: dict[str, Published] = {}
        self._errors: dict[str, str] = {}
        for hardware in list_hardware(self._dir):
            try:
                self._loaded[hardware] = load_current(self._dir, hardware)
            except JoulecastError as exc:
                logger.error("predictor of %s not loaded: %s", hardware, exc)
                self._errors[hardware] = str(exc)

    def hardware(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)

    @property
    def default_hardware(self) -> str:
        """The only hardware, or the first in name order; FailedPrecondition when none."""
        names = self.hardware()
        if not names:
            raise FailedPrecondition(f"no predictor is published under {self._dir}/predictors")
        return names[0]

    def _get(self, hardware: str | None) -> Published:
        with self._lock:
            loaded = dict(self._loaded)
        if not loaded:
            raise FailedPrecondition(
                f"no predictor is published under {self._dir}/predictors; run `joulecast fit`"
            )
        if hardware is None:
            return loaded[sorted(loaded)[0]]
        if hardware not in loaded:
            raise NotFound(f"no predictor for hardware {hardware!r}; available: {sorted(loaded)}")
        return loaded[hardware]

    def predict(
        self,
        profile: GraphProfile,
        *,
        batch_size: int,
        samples: int,
        epochs: int,
        hardware: str | None = None,
        observed_gpu_util: float | None = None,
    ) -> EnergyPrediction:
        """Train and test energy (J) of ``samples`` samples for ``epochs`` epochs."""
        return estimate(
            self._get(hardware),
            profile,
            batch_size=batch_size,
            samples=samples,
            epochs=epochs,
            observed_gpu_util=observed_gpu_util,
        )

    def reload(self, hardware: str) -> str:
        """Load the newest CURRENT version of ``hardware`` and swap it in; returns its version."""
        published = load_current(self._dir, hardware)
        with self._lock:
            self._loaded[hardware] = published
            self._errors.pop(hardware, None)
        logger.info("predictor of %s now at version %s", hardware, published.version)
        return published.version

    def describe(self) -> list[dict]:
        """One entry per loaded hardware: version, energy source, selection, CV scores."""
        with self._lock:
            loaded = dict(self._loaded)
        return [describe_published(loaded[h]) for h in sorted(loaded)]


def describe_published(published: Published) -> dict:
    bundle = published.bundle
    return {
        "hardware": bundle.hardware,
        "version": published.version,
        "created_at": published.created_at,
        "energy_source": bundle.energy_source,
        "energy_is_estimate": bundle.energy_is_estimate,
        "phases": list(bundle.phases),
        "families": {p: list(f) for p, f in bundle.families.items()},
        "selected": dict(bundle.selected),
        "fallback_unseen_family": dict(bundle.fallback),
        "scores": bundle.scores,
        "dataset": bundle.dataset,
        "domain": dict(bundle.domain),
        "notes": list(bundle.notes),
    }


def fit_and_publish(
    store_path: Path,
    hardware: str | None,
    artifacts_dir: Path,
    held_out_csv: Path | None = None,
) -> dict:
    """Fit on one hardware's rows of a measurement store and publish a new version.

    ``hardware`` None means the only hardware in the store (an error lists them otherwise).
    ``held_out_csv``, when given, receives the leave-one-configuration-out predictions of every
    predictor (config_id, family, phase, predictor, measured_j, predicted_j), the input of the
    report's predicted-vs-measured figure. Returns :func:`describe_published` of the new version.
    """
    from estimator.artifacts import publish

    dataset = from_store(store_path, hardware)
    bundle = fit_bundle(dataset)
    published = publish(bundle, artifacts_dir)
    if held_out_csv is not None and bundle.held_out is not None:
        held_out_csv.parent.mkdir(parents=True, exist_ok=True)
        bundle.held_out.to_csv(held_out_csv, index=False)
    return describe_published(published)
