"""``utilisation-aware``: energy from predicted GPU utilisation and duration (paper's C5).

Stage 1 predicts, from family-free graph features, the duration per sample (log space) and the
mean GPU utilisation (logit of the percentage). Stage 2 fits power against utilisation across
families and phases, ``P ≈ P_idle + k·util`` (W, util in percent), so that
``E ≈ (P_idle + k·util)·t``. A caller's observed utilisation replaces stage 1's guess.

Rows without utilisation (CPU runs) degrade the model to ``E ≈ P_phase·t`` with one mean power
per phase, and the predictor says so in :attr:`notes`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import LOG_FEATURES, OBSERVED_UTIL, ServeRow, log_features
from estimator.predictors.base import Predictor, Ridge, positive_one
from joulecast.errors import FailedPrecondition
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NO_UTIL_NOTE", "OBSERVED_UTIL", "UtilisationAware"]

NO_UTIL_NOTE = (
    "utilisation-aware: the training rows carry no GPU utilisation (CPU runs or imported data); energy comes "
    "from the predicted duration times mean power (E = P·t)"
)


def _logit(util_pct: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(util_pct, float) / 100.0, 0.01, 0.99)
    return np.log(p / (1.0 - p))


def _expit(z: np.ndarray) -> np.ndarray:
    return 100.0 / (1.0 + np.exp(-z))


class UtilisationAware(Predictor):
    """Two stages: graph -> (duration, utilisation) -> energy."""

    name: ClassVar[str] = "utilisation-aware"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    @property
    def notes(self) -> tuple[str, ...]:
        return () if self.uses_util_ else (NO_UTIL_NOTE,)

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        t = frame["duration_per_sample_s"].to_numpy(float)
        if not np.all(np.isfinite(t) & (t > 0)):
            raise FailedPrecondition("utilisation-aware needs a positive duration on every row")
        x = log_features(frame)
        self.duration_ = Ridge(self.alpha).fit(x, np.log(t))
        util = frame["gpu_util_mean"].to_numpy(float)
        power = y / t
        self.uses_util_ = bool(np.all(np.isfinite(util)))
        self.power_: dict[str, float] = {}
        for phase in PHASES:
            mask = frame["phase"].to_numpy() == phase
            if mask.any():
                self.power_[phase] = float(np.median(power[mask]))
        if self.uses_util_:
            self.util_ = Ridge(self.alpha).fit(x, _logit(util))
            from scipy.optimize import nnls  # fitting only: answering imports no SciPy

            design = np.column_stack([np.ones_like(util), util]) / power[:, None]
            coef, _ = nnls(design, np.ones_like(power))
            self.idle_power_w_, self.k_w_per_pct_ = float(coef[0]), float(coef[1])
        else:
            self.util_ = None
            self.idle_power_w_ = self.k_w_per_pct_ = float("nan")
        self.floor_ = float(y.min()) * 1e-3

    def predict_duration_row(self, row: ServeRow) -> float:
        """:meth:`predict_duration` of one serving row."""
        return float(np.exp(self.duration_.predict(row.log))[0])

    def predict_row(self, row: ServeRow) -> float:
        return self.predict_row_and_duration(row)[0]

    def predict_row_and_duration(self, row: ServeRow) -> tuple[float, float]:
        """(energy J, duration s) per sample per epoch of one serving row, one duration fit."""
        t = np.exp(self.duration_.predict(row.log))
        if row.phase not in self.power_:
            return math.nan, float(t[0])
        if self.uses_util_:
            assert self.util_ is not None
            if row.observed_util is not None and math.isfinite(row.observed_util):
                util = np.array([float(row.observed_util)])
            else:
                util = _expit(self.util_.predict(row.log))
            power = self.idle_power_w_ + self.k_w_per_pct_ * util
        else:
            power = np.array([self.power_[row.phase]])
        return positive_one(float((power * t)[0]), self.floor_), float(t[0])

    def state(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "features": list(LOG_FEATURES),
            "duration": self.duration_.state(),
            "util": None if self.util_ is None else self.util_.state(),
            "uses_util": self.uses_util_,
            "power_w": self.power_,
            "idle_power_w": None if not self.uses_util_ else self.idle_power_w_,
            "k_w_per_pct": None if not self.uses_util_ else self.k_w_per_pct_,
            "floor": self.floor_,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        if list(state["features"]) != list(LOG_FEATURES):
            raise ValueError(f"model features {state['features']} differ from {LOG_FEATURES}")
        model = cls(float(state["alpha"]))
        model.duration_ = Ridge.from_state(state["duration"])
        model.uses_util_ = bool(state["uses_util"])
        model.util_ = Ridge.from_state(state["util"]) if model.uses_util_ else None
        model.power_ = {p: float(v) for p, v in state["power_w"].items()}
        nan = float("nan")
        model.idle_power_w_ = float(state["idle_power_w"]) if model.uses_util_ else nan
        model.k_w_per_pct_ = float(state["k_w_per_pct"]) if model.uses_util_ else nan
        model.floor_ = float(state["floor"])
        return model
