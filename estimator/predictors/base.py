"""What every predictor shares: the contract, a relative-error affine fit, a small ridge model.

Predictors follow the scikit-learn contract: ``__init__`` stores hyperparameters only, ``fit``
returns ``self``, learned state ends in ``_``. They take the dataset frame (see
:mod:`estimator.dataset`) and the target energy per sample per epoch in joules, predict that
quantity (always > 0), and serialise to JSON-compatible files (never pickle).
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from estimator.features import ServeRow
from joulecast.errors import FailedPrecondition

PHASES = ("train", "test")


class ArtifactFormatError(FailedPrecondition):
    """A predictor file does not hold what its predictor expects."""


class Predictor(ABC):
    """Predicts energy per sample per epoch (J) from feature rows."""

    name: ClassVar[str]
    family_free: ClassVar[bool] = True
    """True when predictions do not use the family label (usable on unseen families)."""

    @abstractmethod
    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> Self: ...

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Energy per sample per epoch in joules, > 0; NaN for a phase it was not fitted on."""

    def predict_row(self, row: ServeRow) -> float:
        """:meth:`predict` of one serving row, the same value; subclasses skip pandas here."""
        return float(self.predict(row.frame())[0])

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Learned state as JSON-compatible values."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self: ...

    def blobs(self) -> dict[str, bytes]:
        """Extra model files in their own formats (XGBoost JSON); file name -> bytes."""
        return {}

    def to_files(self) -> dict[str, bytes]:
        """Every file of this predictor: ``<name>.json`` plus any :meth:`blobs`."""
        payload = {"predictor": self.name, "state": self.state()}
        text = json.dumps(payload, sort_keys=True, indent=1, allow_nan=False)
        return {f"{self.name}.json": text.encode(), **self.blobs()}

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> Self:
        try:
            payload = json.loads(files[f"{cls.name}.json"])
        except (KeyError, ValueError) as exc:
            raise ArtifactFormatError(f"{cls.name}: unreadable model file: {exc}") from exc
        if payload.get("predictor") != cls.name:
            raise ArtifactFormatError(
                f"{cls.name}: file names predictor {payload.get('predictor')}"
            )
        try:
            return cls.from_state(payload["state"], files)
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactFormatError(f"{cls.name}: malformed state: {exc}") from exc


def affine_relative(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``y ≈ a + b·x`` with a, b ≥ 0, minimising squared *relative* error (so small models count).

    Returns (a, b). Falls back to a constant when x does not vary.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = 1.0 / y
    design = np.column_stack([w, x * w])
    if np.ptp(x) == 0:
        design = design[:, :1]
    scale = np.maximum(np.abs(design).max(axis=0), 1e-300)
    coef, _ = nnls(design / scale, np.ones_like(y))
    coef = coef / scale
    a = float(coef[0])
    b = float(coef[1]) if len(coef) > 1 else 0.0
    return a, b


class Ridge:
    """Ridge regression on standardised inputs, closed form; JSON state. ``alpha`` ≥ 0.

    Built to extrapolate gently: an input that barely varied in training (spread under
    :attr:`MIN_STD`) counts as constant, standardised inputs are clipped to the training range
    widened by :attr:`Z_MARGIN`, and outputs to the training targets' range widened by
    :attr:`Y_MARGIN` (natural-log units when the target is a log).
    """

    MIN_STD = 0.05
    Z_MARGIN = 3.0
    Y_MARGIN = 7.0

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: np.ndarray, y: np.ndarray) -> Ridge:
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        self.mean_ = x.mean(axis=0)
        std = x.std(axis=0)
        self.std_ = np.where(std > self.MIN_STD, std, np.inf)
        z = (x - self.mean_) / self.std_
        self.zmax_ = float(np.abs(z).max(initial=0.0)) + self.Z_MARGIN
        self.ylim_ = [float(y.min()) - self.Y_MARGIN, float(y.max()) + self.Y_MARGIN]
        self.intercept_ = float(y.mean())
        gram = z.T @ z + self.alpha * np.eye(z.shape[1])
        self.coef_ = np.linalg.solve(gram, z.T @ (y - self.intercept_))
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = np.clip((np.asarray(x, float) - self.mean_) / self.std_, -self.zmax_, self.zmax_)
        return np.clip(z @ self.coef_ + self.intercept_, *self.ylim_)

    def predict_one(self, x: np.ndarray) -> float:
        """:meth:`predict` of a ``(1, n)`` float64 matrix as a float (same arithmetic)."""
        z = np.clip((x - self.mean_) / self.std_, -self.zmax_, self.zmax_)
        return float(np.clip(z @ self.coef_ + self.intercept_, self.ylim_[0], self.ylim_[1])[0])

    def state(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "mean": self.mean_.tolist(),
            "std": [s if np.isfinite(s) else None for s in self.std_.tolist()],
            "zmax": self.zmax_,
            "ylim": self.ylim_,
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Ridge:
        model = cls(float(state["alpha"]))
        model.mean_ = np.asarray(state["mean"], float)
        model.std_ = np.asarray([np.inf if s is None else s for s in state["std"]], float)
        model.zmax_ = float(state["zmax"])
        model.ylim_ = [float(v) for v in state["ylim"]]
        model.coef_ = np.asarray(state["coef"], float)
        model.intercept_ = float(state["intercept"])
        if not (len(model.mean_) == len(model.std_) == len(model.coef_)):
            raise ValueError("ridge state has mismatched lengths")
        return model


def positive(values: np.ndarray, floor: float) -> np.ndarray:
    """Clamp predictions to at least ``floor`` (> 0), keeping NaN (phase not fitted)."""
    return np.where(np.isnan(values), np.nan, np.maximum(values, floor))


def positive_one(value: float, floor: float) -> float:
    """:func:`positive` of one value."""
    return value if math.isnan(value) else max(value, floor)
