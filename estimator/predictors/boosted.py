"""``boosted``: XGBoost on the profile's family-free features, in log space.

Trees do not extrapolate, and the largest configuration is always out of range when it is left
out; so the trees learn the residual over a per-phase log-log line in FLOPs (given as the base
margin), and that line carries predictions beyond the measured range. The family label is not a
feature: FLOPs by kind, recurrent steps and bytes carry the architecture, so an unseen family
still gets an answer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import ServeRow, phase_flops
from estimator.predictors.base import Predictor, positive_one
from estimator.predictors.trees import TreeModel
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd


class Boosted(TreeModel, Predictor):
    """Gradient-boosted trees (XGBoost) on log features, over a log-log FLOPs baseline."""

    name: ClassVar[str] = "boosted"
    model_file: ClassVar[str] = "boosted.xgb.json"

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
        self._train(frame, logy, self._base(frame))
        self.floor_ = float(np.exp(logy.min())) * 1e-3

    def predict_row(self, row: ServeRow) -> float:
        """Energy per sample of one row: ``inplace_predict`` on its numpy features."""
        line = self.line_.get(row.phase)
        if line is None:
            return math.nan
        logx = np.log(np.maximum(np.array([row.flops]), 1.0))
        margin = self._margin(row, line[0] + line[1] * logx)
        return positive_one(float(np.exp(margin)[0]), self.floor_)

    def state(self) -> dict[str, Any]:
        return {"line": self.line_, "floor": self.floor_, **self._tree_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls(**state["hyperparameters"])
        model._load_trees(state, blobs)
        model.floor_ = float(state["floor"])
        return model
