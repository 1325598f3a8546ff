"""What the XGBoost predictors share: hyperparameters, training on the log features over a
base margin, one row's margin, and the booster's own JSON file.

``boosted`` (energy) and ``boosted-duration`` (duration, monotone in FLOPs) both learn the
residual over a per-phase log-log line in FLOPs given as the base margin: trees do not
extrapolate, the line does.

XGBoost trains; the trees then answer through :class:`~estimator.predictors.forest.Forest`,
which reads XGBoost's own model file and computes the same float32 margin, so that loading and
answering never import XGBoost (about 1.5 s), right after a fit as after a load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from estimator.features import LOG_FEATURES, ServeRow, log_features
from estimator.predictors.forest import Forest, ForestFormatError

if TYPE_CHECKING:
    import pandas as pd


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
        """Fit the trees on the frame's log features to ``label`` over margin ``base``; keep
        XGBoost's model file (``model_json_``) and its :class:`Forest` (``forest_``)."""
        import xgboost as xgb

        matrix = xgb.DMatrix(
            log_features(frame),
            label=label,
            base_margin=base,
            feature_names=list(LOG_FEATURES),
            nthread=1,
        )
        booster = xgb.train(self._params(), matrix, num_boost_round=self.n_estimators)
        self._set_trees(bytes(booster.save_raw(raw_format="json")))

    def _set_trees(self, model_json: bytes) -> None:
        forest = Forest.from_json(model_json)
        if forest.n_features != len(LOG_FEATURES):
            raise ForestFormatError(
                f"the trees read {forest.n_features} features, not the {len(LOG_FEATURES)} "
                "log features"
            )
        self.model_json_: bytes | None = model_json
        self.forest_: Forest | None = forest

    def _margin(self, row: ServeRow, base: np.ndarray | None) -> np.ndarray:
        """The trees' float32 ``(1,)`` output for one row (log space), over the margin ``base``
        (None: the model's ``base_score``, which is 0 here): what XGBoost's
        ``inplace_predict(..., predict_type="margin")`` gives, bit for bit."""
        return self.forest_.predict_margin(row.log, base)  # type: ignore[union-attr]

    def _tree_state(self) -> dict[str, Any]:
        return {
            "features": list(LOG_FEATURES),
            "model_file": self.model_file,
            "hyperparameters": self.get_params(),  # type: ignore[attr-defined]
        }

    def blobs(self) -> dict[str, bytes]:
        return {self.model_file: self.model_json_}  # type: ignore[dict-item]

    def _load_trees(self, state: dict[str, Any], blobs: dict[str, bytes]) -> None:
        """Read ``line_`` and the trees back (ValueError when they do not fit)."""
        if list(state["features"]) != list(LOG_FEATURES):
            raise ValueError(f"model features {state['features']} differ from {LOG_FEATURES}")
        self.line_ = {p: [float(v) for v in c] for p, c in state["line"].items()}
        try:
            self._set_trees(bytes(blobs[state["model_file"]]))
        except ForestFormatError as exc:
            raise ValueError(f"cannot read the trees' model file: {exc}") from exc
