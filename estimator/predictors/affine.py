"""The paper's baselines: affine energy per sample on FLOPs (global, per family) or params.

Fits minimise relative error with non-negative intercept and slope, per phase: a training
sample costs ``a + b·FLOPs_train`` and a test sample ``a' + b'·FLOPs_forward``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import ServeRow, phase_flops
from estimator.predictors.base import Predictor, affine_relative, positive_one
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd


def _x(frame: pd.DataFrame, on: str) -> np.ndarray:
    return phase_flops(frame) if on == "flops" else frame["params"].to_numpy(float)


class GlobalFlops(Predictor):
    """One affine fit of energy per sample on FLOPs over all families (the naive baseline)."""

    name: ClassVar[str] = "global-flops"

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        self.coef_: dict[str, list[float]] = {}
        for phase in PHASES:
            mask = frame["phase"].to_numpy() == phase
            if mask.any():
                self.coef_[phase] = list(affine_relative(phase_flops(frame[mask]), y[mask]))
        self.floor_ = float(y.min()) * 1e-3

    def predict_row(self, row: ServeRow) -> float:
        coef = self.coef_.get(row.phase)
        if coef is None:
            return math.nan
        return positive_one(coef[0] + coef[1] * row.flops, self.floor_)

    def state(self) -> dict[str, Any]:
        return {"coef": self.coef_, "floor": self.floor_}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls()
        model.coef_ = {p: [float(v) for v in c] for p, c in state["coef"].items()}
        model.floor_ = float(state["floor"])
        return model


class FamilyAffine(Predictor):
    """Per family and phase, affine energy per sample on FLOPs (``on='flops'``) or params.

    A family with fewer than two distinct x values in a phase uses the all-family fit.
    """

    name: ClassVar[str] = "family-affine"
    family_free: ClassVar[bool] = False
    on: ClassVar[str] = "flops"

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        x = _x(frame, self.on)
        phases = frame["phase"].to_numpy()
        families = frame["family"].to_numpy()
        self.coef_: dict[str, dict[str, list[float]]] = {}
        self.pooled_: dict[str, list[float]] = {}
        for phase in PHASES:
            in_phase = phases == phase
            if not in_phase.any():
                continue
            self.pooled_[phase] = list(affine_relative(x[in_phase], y[in_phase]))
            self.coef_[phase] = {}
            for family in sorted(set(families[in_phase])):
                mask = in_phase & (families == family)
                if len(np.unique(x[mask])) >= 2:
                    self.coef_[phase][family] = list(affine_relative(x[mask], y[mask]))
        self.floor_ = float(y.min()) * 1e-3

    def predict_row(self, row: ServeRow) -> float:
        pooled = self.pooled_.get(row.phase)
        if pooled is None:
            return math.nan
        a, b = self.coef_[row.phase].get(row.family, pooled)
        x = row.flops if self.on == "flops" else row.params
        return positive_one(a + b * x, self.floor_)

    def slopes(self, phase: str) -> dict[str, float]:
        """Fitted slope per family (J per sample per FLOP, or per parameter)."""
        return {f: c[1] for f, c in self.coef_.get(phase, {}).items()}

    def state(self) -> dict[str, Any]:
        return {"on": self.on, "coef": self.coef_, "pooled": self.pooled_, "floor": self.floor_}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        if state["on"] != cls.on:
            raise ValueError(f"state fits on {state['on']}, expected {cls.on}")
        model = cls()
        model.coef_ = {
            p: {f: [float(v) for v in c] for f, c in fams.items()}
            for p, fams in state["coef"].items()
        }
        model.pooled_ = {p: [float(v) for v in c] for p, c in state["pooled"].items()}
        model.floor_ = float(state["floor"])
        return model


class FamilyAffineParams(FamilyAffine):
    """Per family and phase, affine energy per sample on the parameter count (paper's C2)."""

    name: ClassVar[str] = "family-affine-params"
    on: ClassVar[str] = "params"
