"""What the two XGBoost predictors share: hyperparameters, training on the log features over a
base margin, one row's margin, and the booster's own JSON file.

``boosted`` (energy) and ``boosted-duration`` (duration, monotone in FLOPs) both learn the
residual over a per-phase log-log line in FLOPs given as the base margin: trees do not
extrapolate, the line does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb

from estimator.features import LOG_FEATURES, ServeRow, log_features


class TreeModel:
    """Mixin of an XGBoost predictor; ``model_file`` names the booster's file in an artifact.

    ``reg_lambda`` 1.0 is XGBoost's own default (L2 on leaf weights)."""

    model_file: ClassVar[str]

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

    def _train(self, frame: pd.DataFrame, label: np.ndarray, base: np.ndarray) -> None:
        """Fit ``booster_`` on the frame's log features to ``label`` over margin ``base``."""
        matrix = xgb.DMatrix(
            log_features(frame),
            label=label,
            base_margin=base,
            feature_names=list(LOG_FEATURES),
            nthread=1,
        )
        self.booster_ = xgb.train(self._params(), matrix, num_boost_round=self.n_estimators)

    def _margin(self, row: ServeRow, base: np.ndarray | None) -> np.ndarray:
        """The booster's ``(1,)`` output for one row (log space), over the margin ``base``
        (None: the booster's ``base_score``, which is 0 here; setting a margin costs XGBoost
        about a quarter of a one-row prediction)."""
        return self.booster_.inplace_predict(
            row.log, predict_type="margin", base_margin=base, validate_features=False
        )

    def _tree_state(self) -> dict[str, Any]:
        return {
            "features": list(LOG_FEATURES),
            "model_file": self.model_file,
            "hyperparameters": self.get_params(),  # type: ignore[attr-defined]
        }

    def blobs(self) -> dict[str, bytes]:
        return {self.model_file: bytes(self.booster_.save_raw(raw_format="json"))}

    def _load_trees(self, state: dict[str, Any], blobs: dict[str, bytes]) -> None:
        """Read ``line_`` and the booster back (ValueError when they do not fit)."""
        if list(state["features"]) != list(LOG_FEATURES):
            raise ValueError(f"model features {state['features']} differ from {LOG_FEATURES}")
        self.line_ = {p: [float(v) for v in c] for p, c in state["line"].items()}
        booster = xgb.Booster(params={"nthread": 1})
        try:
            booster.load_model(bytearray(blobs[state["model_file"]]))
        except xgb.core.XGBoostError as exc:
            raise ValueError(f"XGBoost cannot read its model file: {exc}") from exc
        self.booster_ = booster
