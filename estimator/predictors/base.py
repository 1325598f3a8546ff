"""What every predictor shares: the contract, a relative-error affine fit, a small ridge model.

Predictors follow scikit-learn's estimator contract: ``__init__`` stores hyperparameters only
(:meth:`Predictor.get_params` / :meth:`Predictor.set_params` read and write them), ``fit``
returns ``self``, learned state ends in ``_``, predicting before fitting raises
:class:`NotFittedError`, and :meth:`Predictor.predict` refuses a frame that lacks a feature
column seen in ``fit``. They take the dataset frame (see :mod:`estimator.dataset`) and the
target energy per sample per epoch in joules, predict that quantity (always > 0), and serialise
to JSON-compatible files (never pickle).

One prediction path: subclasses implement :meth:`Predictor.predict_row` on a numpy
:class:`~estimator.features.ServeRow`; :meth:`Predictor.predict` (a frame, for fitting-time
code and reports) runs each row through it.
"""

from __future__ import annotations

import inspect
import json
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import OBSERVED_UTIL, PROFILE_FEATURES, ServeRow, serve_rows
from joulecast.errors import FailedPrecondition, InvalidArgument

if TYPE_CHECKING:
    import pandas as pd


FEATURES_IN = (*PROFILE_FEATURES, "batch_size", "samples", "epochs", "phase", "family")
"""Feature columns every predictor reads at predict time (checked by name)."""


class ArtifactFormatError(FailedPrecondition):
    """A predictor file does not hold what its predictor expects."""


class NotFittedError(FailedPrecondition):
    """A predictor was asked to predict before ``fit`` (or loading) gave it learned state."""


class Hyperparameters:
    """scikit-learn's contract for anything fitted: ``__init__`` stores hyperparameters only,
    read and written by name; learned state ends in ``_`` and is set by ``fit`` (or by loading
    files), so a model asked before that raises :class:`NotFittedError`."""

    name: ClassVar[str]
    fitted_marker: ClassVar[str] = "feature_names_in_"
    """The learned attribute whose presence says the model is fitted."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p for p in signature.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters by name (the ``__init__`` arguments)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters by name; an unknown name is refused."""
        known = self._param_names()
        for key, value in params.items():
            if key not in known:
                raise InvalidArgument(f"{self.name}: unknown parameter {key!r}; known: {known}")
            setattr(self, key, value)
        return self

    def check_is_fitted(self) -> None:
        if not hasattr(self, self.fitted_marker):
            raise NotFittedError(f"{self.name} is not fitted yet: call fit() first")


class Predictor(Hyperparameters, ABC):
    """Predicts energy per sample per epoch (J) from feature rows."""

    family_free: ClassVar[bool] = True
    """True when predictions do not use the family label (usable on unseen families)."""
    physical: ClassVar[bool] = False
    """True when the predictor answers with power and duration (:class:`PhysicalPredictor`)."""

    def _check_features(self, columns: object) -> None:
        self.check_is_fitted()
        missing = [c for c in self.feature_names_in_ if c not in columns]  # type: ignore[operator]
        if missing:
            raise InvalidArgument(f"{self.name}: features missing at predict time: {missing}")

    # -- fit and predict -----------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame, y: np.ndarray) -> Self:
        """Fit on a feature frame and the energy per sample per epoch (J, > 0)."""
        y = np.asarray(y, float)
        if len(frame) != len(y) or len(y) == 0:
            raise InvalidArgument(f"{self.name}: {len(frame)} rows but {len(y)} targets")
        if not np.all(np.isfinite(y) & (y > 0)):
            raise InvalidArgument(f"{self.name}: targets must be finite and positive")
        missing = [c for c in FEATURES_IN if c not in frame]
        if missing:
            raise InvalidArgument(f"{self.name}: feature columns missing: {missing}")
        self._fit(frame, y)
        self.feature_names_in_ = FEATURES_IN
        return self

    @abstractmethod
    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None: ...

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Energy per sample per epoch in joules, > 0; NaN for a phase it was not fitted on.

        Runs every row through :meth:`predict_row` (the serving path), so the two agree.
        """
        self._check_features(frame.columns)
        return np.array([self.predict_row(row) for row in frame_rows(frame)], float)

    @abstractmethod
    def predict_row(self, row: ServeRow) -> float:
        """Energy per sample per epoch (J) of one row; NaN for a phase not fitted."""

    def check_row(self, row: ServeRow) -> None:
        """Refuse a row (serving path) before fit or without the fitted feature names."""
        self._check_features(row.features)

    # -- files ---------------------------------------------------------------------------------

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
        self.check_is_fitted()
        payload = {
            "predictor": self.name,
            "state": self.state(),
            "features_in": list(self.feature_names_in_),
        }
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
            model = cls.from_state(payload["state"], files)
            model.feature_names_in_ = tuple(payload.get("features_in", FEATURES_IN))
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactFormatError(f"{cls.name}: malformed state: {exc}") from exc
        return model


def frame_rows(frame: pd.DataFrame) -> list[ServeRow]:
    """One :class:`ServeRow` per frame row (its own phase; the observed utilisation if given)."""
    rows = []
    for record in frame.to_dict("records"):
        phase = str(record["phase"])
        row = serve_rows(record, (phase,))[phase]
        util = record.get(OBSERVED_UTIL)
        if util is not None and isinstance(util, float) and math.isfinite(util):
            row = row.with_observed_util(util)
        rows.append(row)
    return rows


class PhysicalPredictor(Predictor):
    """A predictor whose energy is average power × duration, each bounded.

    :meth:`predict_parts_row` gives (power in W, duration per sample per epoch in s); energy is
    their product. Power lies within :attr:`power_range_w_`, the range the hardware drew in the
    training rows, and per sample a training step never costs less time or energy than a test
    step of the same graph.
    """

    physical: ClassVar[bool] = True
    power_range_w_: tuple[float, float]

    @abstractmethod
    def predict_parts_row(self, row: ServeRow) -> tuple[float, float]:
        """(power W, duration per sample per epoch s) of one row; NaNs for an unfitted phase."""

    def predict_row(self, row: ServeRow) -> float:
        power, duration = self.predict_parts_row(row)
        return power * duration


def power_of(frame: pd.DataFrame, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean power W, duration per sample s) of fitting rows; refuses rows without a duration."""
    t = frame["duration_per_sample_s"].to_numpy(float)
    if not np.all(np.isfinite(t) & (t > 0)):
        raise FailedPrecondition("power × duration models need a positive duration on every row")
    return np.asarray(y, float) / t, t


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
    from scipy.optimize import nnls  # fitting only: answering imports no SciPy

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
