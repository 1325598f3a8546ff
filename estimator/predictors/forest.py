"""XGBoost's own JSON model file, evaluated in Python: answering needs no XGBoost.

Why: ``import xgboost`` costs about 1.5 s (it imports scikit-learn, SciPy and pandas when they
are installed), more than profiling a graph and answering for it together; a notebook asking for
one prediction, or ``joulecast predict`` without a server, would pay it every time. XGBoost
still trains the trees (``estimator.predictors.trees``); its model file is then read here.

The arithmetic is XGBoost's CPU predictor's, so answers are bit for bit the same (the tests
compare every shipped model file with XGBoost on many rows):

- each feature is cast to float32, as XGBoost's data adapters do;
- a node sends a row left when ``value < split_condition`` (both float32), a missing value
  (NaN) to its default child;
- the margin starts at the base margin (cast to float32) or the model's ``base_score``, and each
  tree's leaf is added to it in float32, tree by tree in order.

Only what joulecast fits is accepted (one gradient-boosted tree ensemble, one target, numerical
splits, ``reg:squarederror``, whose output is the margin); any other model file is refused.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass

import numpy as np

VECTOR_ROWS = 32
"""From this many rows a forest is evaluated in numpy, all rows a tree at a time (a graph's
49,000 nodes: about 25 s one row at a time); fewer rows go through plain Python, faster for the
one-row answers a server gives."""
SUPPORTED_OBJECTIVES = frozenset({"reg:squarederror"})
"""Objectives whose prediction is the margin itself (no link function to apply)."""


class ForestFormatError(ValueError):
    """The file is not an XGBoost JSON model of the kind joulecast fits."""


@dataclass(frozen=True, slots=True)
class _Tree:
    """One tree as parallel lists (node i: children, split feature, threshold or leaf value)."""

    left: tuple[int, ...]
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    """A split's condition, or a leaf's value; each exactly a float32 value."""
    default_left: tuple[bool, ...]
    leaf: tuple[np.float32, ...]
    arrays: tuple[np.ndarray, ...]
    """The same as numpy arrays (left, right, feature, threshold as float32, default_left, leaf
    as float32), for many rows at once."""

    def leaf_of(self, row: list[float]) -> np.float32:
        node = 0
        left, right, feature, threshold = self.left, self.right, self.feature, self.threshold
        while left[node] >= 0:
            value = row[feature[node]]
            if value != value:  # NaN: missing
                node = left[node] if self.default_left[node] else right[node]
            elif value < threshold[node]:
                node = left[node]
            else:
                node = right[node]
        return self.leaf[node]

    def leaves_of(self, x: np.ndarray) -> np.ndarray:
        """The leaf value (float32) of every row of the float32 matrix ``x``: all rows descend
        one level at a time, as :meth:`leaf_of` does for one."""
        left, right, feature, threshold, default_left, leaf = self.arrays
        node = np.zeros(len(x), dtype=np.int64)
        active = np.flatnonzero(left[node] >= 0)
        while active.size:
            at = node[active]
            value = x[active, feature[at]]
            go_left = np.where(np.isnan(value), default_left[at], value < threshold[at])
            node[active] = np.where(go_left, left[at], right[at])
            active = active[left[node[active]] >= 0]
        return leaf[node]


def _float32(value: object) -> float:
    """A JSON number as the float32 it was written from (XGBoost writes the shortest decimal
    that reads back as that float32)."""
    if isinstance(value, str):  # base_score: "[5E-1]" (XGBoost >= 3) or "5E-1"
        value = value.strip().strip("[]")
    return float(np.float32(float(value)))  # type: ignore[arg-type]


def _tree(raw: dict, n_features: int) -> _Tree:
    left = tuple(int(v) for v in raw["left_children"])
    right = tuple(int(v) for v in raw["right_children"])
    feature = tuple(int(v) for v in raw["split_indices"])
    threshold = tuple(_float32(v) for v in raw["split_conditions"])
    default_left = tuple(bool(v) for v in raw["default_left"])
    n = len(left)
    if not n or any(len(c) != n for c in (right, feature, threshold, default_left)):
        raise ForestFormatError("a tree's node arrays differ in length")
    if any(int(v) != 0 for v in raw.get("split_type", ())):
        raise ForestFormatError("categorical splits are not supported")
    if int(raw.get("tree_param", {}).get("size_leaf_vector", "1") or 1) > 1:
        raise ForestFormatError("vector leaves (several targets) are not supported")
    for i in range(n):
        if left[i] < 0:
            continue
        if not (i < left[i] < n and i < right[i] < n and 0 <= feature[i] < n_features):
            raise ForestFormatError(f"tree node {i} points outside the tree or the features")
    leaf = tuple(np.float32(t) for t in threshold)
    arrays = (
        np.array(left, dtype=np.int64),
        np.array(right, dtype=np.int64),
        np.array(feature, dtype=np.int64),
        np.array(threshold, dtype=np.float32),
        np.array(default_left, dtype=bool),
        np.array(threshold, dtype=np.float32),
    )
    return _Tree(left, right, feature, threshold, default_left, leaf, arrays)


@dataclass(frozen=True, slots=True)
class Forest:
    """A parsed model: its trees, the number of features and the base score (float32)."""

    trees: tuple[_Tree, ...]
    n_features: int
    base_score: np.float32

    @classmethod
    def from_json(cls, data: bytes) -> Forest:
        """Parse XGBoost's JSON model (``Booster.save_raw(raw_format="json")``)."""
        try:
            learner = json.loads(data)["learner"]
            params = learner["learner_model_param"]
            objective = learner["objective"]["name"]
            booster = learner["gradient_booster"]
            if booster.get("name") != "gbtree":
                raise ForestFormatError(f"booster {booster.get('name')!r} is not gbtree")
            if objective not in SUPPORTED_OBJECTIVES:
                raise ForestFormatError(f"objective {objective!r} is not supported")
            if int(params.get("num_target", "1") or 1) > 1 or int(params["num_class"]) > 1:
                raise ForestFormatError("models of several targets or classes are not supported")
            n_features = int(params["num_feature"])
            base = _float32(params["base_score"])
            trees = tuple(_tree(t, n_features) for t in booster["model"]["trees"])
        except ForestFormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ForestFormatError(f"not an XGBoost JSON model: {exc!r}") from exc
        if not math.isfinite(base):
            raise ForestFormatError(f"base_score {base} is not finite")
        return cls(trees, n_features, np.float32(base))

    def predict_margin(self, x: np.ndarray, base_margin: np.ndarray | None = None) -> np.ndarray:
        """The margin of each row of ``x`` (rows x features) as float32, as XGBoost's
        ``inplace_predict(x, predict_type="margin", base_margin=base_margin)`` gives it."""
        if len(np.asarray(x).reshape(-1, self.n_features)) >= VECTOR_ROWS:
            return self._predict_many(x, base_margin)
        rows = np.asarray(x, dtype=np.float32).reshape(-1, self.n_features).tolist()
        if base_margin is None:
            starts = [self.base_score] * len(rows)
        else:
            starts = list(np.asarray(base_margin, dtype=np.float32).reshape(len(rows)))
        out = np.empty(len(rows), dtype=np.float32)
        for i, row in enumerate(rows):
            margin = starts[i]
            for tree in self.trees:
                margin = margin + tree.leaf_of(row)
            out[i] = margin
        return out

    def _predict_many(self, x: np.ndarray, base_margin: np.ndarray | None) -> np.ndarray:
        """:meth:`predict_margin` for many rows: each tree over every row in numpy, the margin
        summed in float32 tree by tree in the same order (so the same bits)."""
        matrix = np.asarray(x, dtype=np.float32).reshape(-1, self.n_features)
        if base_margin is None:
            margin = np.full(len(matrix), self.base_score, dtype=np.float32)
        else:
            margin = np.asarray(base_margin, dtype=np.float32).reshape(len(matrix)).copy()
        for tree in self.trees:
            margin += tree.leaves_of(matrix)
        return margin


class LazyForest:
    """A model file kept as bytes and parsed on first use (thread-safe).

    The layer-sum predictor holds three files of 600 trees (8 MB of JSON, a quarter of a second
    to parse): a registry loads every hardware at start, and most answers never ask for them.
    The file's integrity is checked when its version is loaded (the manifest's sha256)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._forest: Forest | None = None
        self._lock = threading.Lock()

    def get(self) -> Forest:
        forest = self._forest
        if forest is None:
            with self._lock:
                if self._forest is None:
                    self._forest = Forest.from_json(self.data)
                forest = self._forest
        return forest

    def predict_margin(self, x: np.ndarray, base_margin: np.ndarray | None = None) -> np.ndarray:
        return self.get().predict_margin(x, base_margin)
