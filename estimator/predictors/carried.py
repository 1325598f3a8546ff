"""``carried``: another CPU's predictor, carried to this CPU by a few rows measured here.

CPUs differ by operator, not by a constant: the same configurations took 0.44-1.08x the CPU
time of the shipped EPYC store on a Xeon VM of the same machine kind, and 0.53-0.72x on a later
EPYC. So a prior predictor (fitted on hundreds of rows of one CPU) answers, and its answer is
scaled by

    log(energy here / prior's answer) = base + Σ_g share_g · c_g + test · [phase is test]

(``share_g``: the share of the prior's additive roofline answer that group ``g`` of its terms
makes up: fixed costs per call and step, FLOPs of each kind, bytes moved; :data:`GROUPS`), with the average power
scaled by one ratio (a cpu-time estimate draws the same watts per core everywhere; a RAPL reading
does not). The coefficients come from :mod:`estimator.carry`; this class only answers with them.
It is not fitted on rows alone and never takes part in a per-hardware fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import ServeRow, serve_rows
from estimator.predictors import PREDICTORS
from estimator.predictors.base import FEATURES_IN, PhysicalPredictor
from estimator.predictors.physical import (
    MEMORY_TERMS,
    MIN_TRAIN_OVER_TEST,
    ROOFLINE_TERMS,
    RooflineDuration,
)
from joulecast.errors import FailedPrecondition

if TYPE_CHECKING:
    import pandas as pd

GROUPS: dict[str, tuple[str, ...]] = {
    "overhead": ("overhead", "batches_per_sample", "recurrent_steps_per_sample"),
    "conv": ("flops_conv",),
    "dense": ("flops_dense",),
    "recurrent": ("flops_recurrent",),
    "other": ("flops_other",),
    "memory": MEMORY_TERMS,
}
"""The prior roofline's terms (:data:`estimator.predictors.physical.ROOFLINE_TERMS`) in the
groups a CPU may differ by: fixed costs per call and step, FLOPs of each kind, bytes moved."""
TERMS = ("base", *GROUPS, "test")
"""The correction's terms, in the order of :func:`design`."""
_PREFIX = "carried--"
"""Prefix of the prior predictors' files inside this predictor's (their own names unchanged)."""
_INDEX = {
    group: [ROOFLINE_TERMS.index(t) for t in terms] for group, terms in GROUPS.items()
}  # fmt: skip


def design(prior: RooflineDuration, features: Mapping[str, object], phase: str) -> np.ndarray:
    """The correction's inputs of one row, in the order of :data:`TERMS`: 1, each group's share
    of the prior roofline's answer, and whether the phase is test."""
    parts = np.maximum(prior.term_parts(features, phase), 0.0)
    total = float(parts.sum())
    shares = [float(parts[i].sum()) / total if total > 0 else 0.0 for i in _INDEX.values()]
    return np.array([1.0, *shares, 1.0 if phase == "test" else 0.0])


class Carried(PhysicalPredictor):
    """A prior physical predictor per phase, its energy and power scaled for this CPU."""

    name: ClassVar[str] = "carried"

    def __init__(self) -> None:
        pass

    @classmethod
    def build(
        cls,
        inner: Mapping[str, RooflineDuration],
        coef: Mapping[str, float],
        log_power: float,
    ) -> Self:
        """The carried predictor of prior predictors ``inner`` (one per phase) and a correction
        (``coef`` by :data:`TERMS`, natural log; ``log_power`` the power ratio's log)."""
        model = cls()
        model._set(inner, coef, log_power)
        model.feature_names_in_ = FEATURES_IN
        return model

    def _set(
        self, inner: Mapping[str, RooflineDuration], coef: Mapping[str, float], log_power: float
    ) -> None:
        for phase, model in inner.items():
            if not isinstance(model, RooflineDuration):
                raise FailedPrecondition(
                    f"carried: the prior's {phase} predictor {model.name} is not an additive "
                    "roofline (its costs cannot be split by kind)"
                )
        values = {t: float(coef[t]) for t in TERMS}
        if not all(math.isfinite(v) for v in [*values.values(), log_power]):
            raise FailedPrecondition("carried: the correction is not finite")
        self.inner_ = dict(inner)
        self.coef_ = values
        self.log_power_ = float(log_power)
        lows = [m.power_range_w_[0] for m in inner.values()]
        highs = [m.power_range_w_[1] for m in inner.values()]
        scale = math.exp(self.log_power_)
        self.power_range_w_ = (min(lows) * scale, max(highs) * scale)

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        raise FailedPrecondition(
            "carried is built from a prior predictor and rows measured here "
            "(estimator.carry), not fitted on rows alone"
        )

    def log_ratio(self, features: Mapping[str, object], phase: str) -> float:
        """log(energy here / the prior's answer) of one row."""
        weights = np.array([self.coef_[t] for t in TERMS])
        return float(design(self.inner_[phase], features, phase) @ weights)

    def _carried(self, row: ServeRow, phase: str) -> tuple[float, float]:
        inner = self.inner_.get(phase)
        if inner is None:
            return math.nan, math.nan
        probe = row if row.phase == phase else _as_phase(row, phase)
        power, duration = inner.predict_parts_row(probe)
        energy = power * duration * math.exp(self.log_ratio(row.features, phase))
        power *= math.exp(self.log_power_)
        return power, energy / power

    def predict_parts_row(self, row: ServeRow) -> tuple[float, float]:
        power, duration = self._carried(row, row.phase)
        if row.phase == "train" and "test" in self.inner_ and math.isfinite(duration):
            # The two phases carry with different terms: keep a training step dearer than a
            # test step of the same graph, as the prior does.
            test_power, test_duration = self._carried(row, "test")
            floor = MIN_TRAIN_OVER_TEST * max(1.0, test_power / power)
            duration = max(duration, test_duration * floor)
        return power, duration

    def state(self) -> dict[str, Any]:
        return {
            "inner": {phase: model.name for phase, model in self.inner_.items()},
            "coef": dict(self.coef_),
            "log_power": self.log_power_,
        }

    def blobs(self) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        for model in self.inner_.values():
            files.update({_PREFIX + name: data for name, data in model.to_files().items()})
        return files

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        inner: dict[str, RooflineDuration] = {}
        loaded: dict[str, RooflineDuration] = {}
        for phase, name in state["inner"].items():
            if name not in loaded:
                if name not in PREDICTORS:
                    raise ValueError(f"unknown prior predictor {name!r}")
                own = {
                    key[len(_PREFIX) :]: data
                    for key, data in blobs.items()
                    if key.startswith(_PREFIX)
                    and (key[len(_PREFIX) :] == f"{name}.json"
                         or key[len(_PREFIX) :].startswith(f"{name}."))
                }  # fmt: skip
                model = PREDICTORS[name].from_files(own)
                if not isinstance(model, RooflineDuration):
                    raise ValueError(f"prior predictor {name!r} is not an additive roofline")
                loaded[name] = model
            inner[str(phase)] = loaded[name]
        model = cls()
        model._set(inner, state["coef"], float(state["log_power"]))
        return model


def _as_phase(row: ServeRow, phase: str) -> ServeRow:
    """The same request's row of another phase (the train-over-test floor needs both)."""
    return serve_rows(row.features, (phase,))[phase]
