"""``boosted``: XGBoost on the profile's family-free features, in log space.

Trees do not extrapolate, and the largest configuration is always out of range when it is left
out; so the trees learn the residual over a per-phase log-log line in FLOPs (given as the base
margin), and that line carries predictions beyond the measured range. The family label is not a
feature: FLOPs by kind, recurrent steps and bytes carry the architecture, so an unseen family
still gets an answer.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xgboost as xgb

from estimator.features import LOG_FEATURES, ServeRow, log_features, phase_flops
from estimator.predictors.base import PHASES, Predictor, positive_one

_MODEL_FILE = "boosted.xgb.json"


class Boosted(Predictor):
    """Gradient-boosted trees (XGBoost) on log features, over a log-log FLOPs baseline."""

    name: ClassVar[str] = "boosted"

    def __init__(
        self,
        n_estimators: int = 60,
        max_depth: int = 3,
        learning_rate: float = 0.15,
        min_child_weight: float = 2.0,
        reg_lambda: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.seed = seed

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "reg:squarederror",
            "max_depth": self.max_depth,
            "eta": self.learning_rate,
            "min_child_weight": self.min_child_weight,
            "lambda": self.reg_lambda,
            "tree_method": "hist",
            "nthread": 1,
            "seed": self.seed,
            "base_score": 0.0,
        }

    def _base(self, frame: pd.DataFrame) -> np.ndarray:
        logx = np.log(np.maximum(phase_flops(frame), 1.0))
        out = np.full(len(frame), np.nan)
        for phase, (c0, c1) in self.line_.items():
            mask = frame["phase"].to_numpy() == phase
            out[mask] = c0 + c1 * logx[mask]
        return out

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        logy = np.log(np.asarray(y, float))
        logx = np.log(np.maximum(phase_flops(frame), 1.0))
        self.line_: dict[str, list[float]] = {}
        for phase in PHASES:
            mask = frame["phase"].to_numpy() == phase
            if not mask.any():
                continue
            if np.ptp(logx[mask]) > 0:
                c1, c0 = np.polyfit(logx[mask], logy[mask], 1)
            else:
                c1, c0 = 0.0, float(logy[mask].mean())
            self.line_[phase] = [float(c0), float(c1)]
        matrix = xgb.DMatrix(
            log_features(frame),
            label=logy,
            base_margin=self._base(frame),
            feature_names=list(LOG_FEATURES),
            nthread=1,
        )
        self.booster_ = xgb.train(self._params(), matrix, num_boost_round=self.n_estimators)
        self.floor_ = float(np.exp(logy.min())) * 1e-3

    def predict_row(self, row: ServeRow) -> float:
        """Energy per sample of one row: ``inplace_predict`` on its numpy features."""
        line = self.line_.get(row.phase)
        if line is None:
            return math.nan
        logx = np.log(np.maximum(np.array([row.flops]), 1.0))
        base = line[0] + line[1] * logx
        margin = self.booster_.inplace_predict(
            row.log, predict_type="margin", base_margin=base, validate_features=False
        )
        return positive_one(float(np.exp(margin)[0]), self.floor_)

    def state(self) -> dict[str, Any]:
        return {
            "line": self.line_,
            "floor": self.floor_,
            "features": list(LOG_FEATURES),
            "model_file": _MODEL_FILE,
            "hyperparameters": {
                "n_estimators": self.n_estimators,
                "max_depth": self.max_depth,
                "learning_rate": self.learning_rate,
                "min_child_weight": self.min_child_weight,
                "reg_lambda": self.reg_lambda,
                "seed": self.seed,
            },
        }

    def blobs(self) -> dict[str, bytes]:
        return {_MODEL_FILE: bytes(self.booster_.save_raw(raw_format="json"))}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        if list(state["features"]) != list(LOG_FEATURES):
            raise ValueError(f"model features {state['features']} differ from {LOG_FEATURES}")
        model = cls(**state["hyperparameters"])
        model.line_ = {p: [float(v) for v in c] for p, c in state["line"].items()}
        model.floor_ = float(state["floor"])
        booster = xgb.Booster(params={"nthread": 1})
        try:
            booster.load_model(bytearray(blobs[state["model_file"]]))
        except xgb.core.XGBoostError as exc:
            raise ValueError(f"XGBoost cannot read its model file: {exc}") from exc
        model.booster_ = booster
        return model
