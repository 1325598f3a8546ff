"""The ``layer-sum`` predictor: energy of one forward pass = overhead + sum of its nodes.

Per measured operator type (Conv, Gemm for Linear/MatMul, MaxPool): a log-linear model of the
energy per forward pass of one node on the node's features, plus a boosted correction of its log
residual (flat outside the data, so extrapolation is the log-linear model's). Ops never measured:

- free ops (reshape, flatten, dropout...) cost 0 J;
- any other op (ReLU, BatchNorm, Add, Softmax, pooling other than max...) costs, per
  activation byte read and written, the median energy per byte of the kernel-1, stride-1
  MaxPool rows (``j_per_byte``: it reads each element once and writes it once) times the op's
  measured ratio to that pool (:data:`FALLBACK_RATIO`: PyTorch runs the pool through a scalar
  loop and ReLU through a vectorised kernel, 50-100x cheaper per byte); flagged in the
  answer's warnings as an assumption. Versions fitted before the ratios priced such ops as the
  pool itself (median of every kernel-1 row), and still do.

A convolution's model also sees its channel padding (:data:`~estimator.layerwise.features.
CHANNEL_BLOCK`): random single-layer configurations rarely have channels in whole blocks, the
layers of real networks nearly always do.

Composition: a graph costs the sum of its nodes, each node less ``once_fraction`` x its
operator's per-call cost (:mod:`~estimator.layerwise.calls`: the intercept at zero work of
the operator's own single-layer rows). ``once_fraction`` is the share of a layer's per-call cost
that a network pays once rather than once per layer; the composition experiment
(``python -m collector.campaign.composition``, :mod:`~estimator.layerwise.composition`) measured
it (see :data:`ONCE_FRACTION`). Versions fitted before held a flat ``overhead_j`` (the 1st
percentile of all rows' energy per pass, the cheapest layer's whole energy rather than a per-call
cost) taken out of every node and added once; they still load and answer as they did.

Interval: split-conformal half-width ``q`` (log space) per operator type from grouped
cross-validation residuals (a configuration's repeats held out together); a graph's ``q`` is the
energy-weighted mean of its nodes' ``q``, widened by :data:`OOD_WIDEN` per kind of
out-of-domain finding. Duration = energy / the median package power measured (RAPL saw a nearly
constant draw), so every answer's implied power lies in the measured range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from estimator.intervals import conformal_quantile
from estimator.layerwise.calls import fit_call_cost
from estimator.layerwise.features import (
    BASE_COLUMNS,
    FREE_OPS,
    MODEL_OPS,
    TREE_COLUMNS,
    base_columns,
    feature_table,
    matrix,
    table_matrix,
    tree_columns,
)
from estimator.predictors.base import Hyperparameters
from estimator.predictors.forest import ForestFormatError, LazyForest
from joulecast.bounded import bounded_warnings
from joulecast.errors import FailedPrecondition
from joulecast.graph import NodeRecord

if TYPE_CHECKING:
    import pandas as pd

NAME = "layer-sum"
FILE = "layer-sum.json"
OOD_WIDEN = 1.5
"""Factor on the interval's log half-width per kind of out-of-domain finding."""
FASTEST_FLOPS = 2e13
"""FLOP/s no CPU reaches (a two-socket, 128-core AVX-512 server peaks near 1.2e13 in FP32): a
node's answer that implies more, at the measured median power, is not physics."""
FASTEST_BYTES_PER_S = 1e14
"""Bytes per second no CPU moves, caches included."""
SLOWEST_CALL_S = 0.01
SLOWEST_FLOPS = 1e7
SLOWEST_BYTES_PER_S = 1e7
"""No operator call on a CPU costs more than ``SLOWEST_CALL_S`` plus its FLOPs at
``SLOWEST_FLOPS`` and its bytes at ``SLOWEST_BYTES_PER_S`` (a 1990s machine's rates): slower
answers come from a log-linear model run far outside the layers it was fitted on (a product
whose inner size was unknown, a sequence where it saw only vectors)."""
RANGE_COLUMNS = ("log_flops", "log_in", "log_out", "log_weight", "log_batch", "kernel", "stride")
"""Node features whose measured range defines an operator's domain."""
MIN_ROWS = 20
ONCE_FRACTION = 0.0
"""Share of each layer's per-call cost a whole network pays once, not once per layer. The
composition experiment on the project's 2-core EPYC VM (cpu-time estimate,
artifacts/measurements/composition-amd-epyc.README.md) fitted it at -0.32: 24 networks cost
1.13 x the sum of their layers run alone (median), so no part of a layer's call is saved in a
network; a negative share is no per-call saving, so it is taken as 0. The excess itself (a hot
single-layer loop against a network's larger working set on a crowded VM) is that machine's,
not a per-call cost, and is not carried to other hardware."""
REFERENCE_KERNEL = 1
"""Unmeasured ops are priced per byte against the hardware's MaxPool rows of this kernel (and
stride 1 where there are any): it reads each element once and writes it once."""
OTHER_OPS = "*"
FALLBACK_RATIO: dict[str, float] = {
    "Add": 0.0859,
    "AveragePool": 0.572,
    "BatchNormalization": 0.0365,
    "GlobalAveragePool": 0.023,
    "Mul": 0.0685,
    "Relu": 0.028,
    "Sigmoid": 0.0589,
    "Softmax": 0.245,
    "Tanh": 0.539,
    OTHER_OPS: 0.0685,
}
"""Per ONNX op, energy per byte moved over that of a kernel-1, stride-1 MaxPool, measured on the
project's 2-core EPYC VM (``python -m collector.campaign.elementwise``, cpu-time ratios;
artifacts/measurements/elementwise-amd-epyc.README.md; :func:`estimator.layerwise.elementwise.
op_ratios` recomputes them from its CSV and a test holds the two equal). ``*``: any other op."""
WORK_COLUMN = {"Conv": "flops_fp", "Gemm": "flops_fp", "MaxPool": "bytes_moved"}
"""What an operator's work is counted in when its per-call cost is fitted."""


@dataclass(frozen=True)
class LayerAnswer:
    """Energy of one forward pass (J) with its 90 % interval, duration (s) and warnings."""

    energy_j: float
    low_j: float
    high_j: float
    duration_s: float
    warnings: tuple[str, ...]
    by_op_j: dict[str, float]


def _trees(x: np.ndarray, y: np.ndarray, rounds: int, seed: int) -> LazyForest:
    """XGBoost's trees of the residual ``y``, kept as its model file (answered through
    :class:`~estimator.predictors.forest.Forest`: serving imports no XGBoost)."""
    import xgboost as xgb

    params = {
        "max_depth": 6,
        "eta": 0.05,
        "subsample": 0.8,
        "objective": "reg:squarederror",
        "nthread": 1,
        "seed": seed,
    }
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=rounds)
    return LazyForest(bytes(booster.save_raw(raw_format="json")))


@dataclass
class _OpModel:
    """One operator type's model: log-linear base + boosted log-residual correction, on the
    columns it was fitted on (versions fitted before per-operator columns used the plain
    :data:`BASE_COLUMNS` / :data:`TREE_COLUMNS`, and keep them)."""

    base: np.ndarray
    trees: LazyForest | None
    q_log: float
    low: dict[str, float]
    high: dict[str, float]
    base_columns: tuple[str, ...] = BASE_COLUMNS
    tree_columns: tuple[str, ...] = TREE_COLUMNS

    def predict(self, rows: list[dict[str, float]]) -> np.ndarray:
        columns = tuple(dict.fromkeys((*self.base_columns, *self.tree_columns)))
        return self.predict_table({c: matrix(rows, (c,))[:, 0] for c in columns})

    def predict_table(self, table: dict[str, np.ndarray]) -> np.ndarray:
        """Energy per forward pass of every row of a feature table: one model call."""
        log_e = table_matrix(table, self.base_columns) @ self.base
        if self.trees is not None:
            try:
                log_e = log_e + self.trees.predict_margin(table_matrix(table, self.tree_columns))
            except ForestFormatError as exc:  # parsed on first use, not when loaded
                raise FailedPrecondition(f"layer-sum: malformed model file: {exc}") from exc
        return np.exp(log_e)


def _fit_op(frame: pd.DataFrame, op: str, rounds: int, seed: int) -> _OpModel:
    rows = frame.to_dict("records")
    on_base, on_trees = base_columns(op), tree_columns(op)
    y = np.log(frame["energy_fp_j"].to_numpy(float))
    base, *_ = np.linalg.lstsq(matrix(rows, on_base), y, rcond=None)
    trees = None
    if rounds > 0:
        residual = y - matrix(rows, on_base) @ base
        trees = _trees(matrix(rows, on_trees), residual, rounds, seed)
    low = {c: float(frame[c].min()) for c in RANGE_COLUMNS}
    high = {c: float(frame[c].max()) for c in RANGE_COLUMNS}
    return _OpModel(base, trees, math.nan, low, high, on_base, on_trees)


def _reference_j_per_byte(frame: pd.DataFrame) -> float:
    """Median energy per byte moved of the reference pool rows (kernel 1, stride 1; else any
    kernel-1 pool, else any pool, else every row)."""
    pools = frame[frame["op_type"] == "MaxPool"]
    copies = pools[pools["kernel"] == REFERENCE_KERNEL]
    straight = copies[copies["stride"] == 1]
    source = next((f for f in (straight, copies, pools) if len(f)), frame)
    return float(np.median(source["energy_fp_j"] / source["bytes_moved"]))


def fold_ids(frame: pd.DataFrame, folds: int) -> np.ndarray:
    """Grouped K-fold id of every row (a configuration's repeats share one fold)."""
    from sklearn.model_selection import GroupKFold

    groups = frame["config_id"].to_numpy()
    ids = np.zeros(len(frame), int)
    k = min(folds, len(set(groups)))
    for n, (_, test) in enumerate(GroupKFold(k).split(frame, groups=groups)):
        ids[test] = n
    return ids


def _op_counts(op_types: np.ndarray) -> dict[str, int]:
    """How many nodes of each operator type, in first-seen order."""
    return {op: int(np.count_nonzero(op_types == op)) for op in dict.fromkeys(op_types.tolist())}


class LayerSum(Hyperparameters):
    """Per-operator layer models summed over a graph's nodes (see the module doc).

    The estimator contract of every predictor: ``__init__`` takes hyperparameters only, and
    the learned state (``ops_``, ``per_call_j_``, ...) is set by :meth:`fit` or
    :meth:`from_files`."""

    name = NAME
    fitted_marker = "ops_"

    def __init__(
        self,
        rounds: int = 600,
        folds: int = 10,
        seed: int = 0,
        once_fraction: float = ONCE_FRACTION,
        fallback_ratio: dict[str, float] | None = None,
    ) -> None:
        self.rounds = rounds
        self.folds = folds
        self.seed = seed
        self.once_fraction = once_fraction
        self.fallback_ratio = fallback_ratio
        """None: :data:`FALLBACK_RATIO`; ``{}``: every unmeasured op priced as the pool."""

    ops_: dict[str, _OpModel]
    per_call_j_: dict[str, float]
    legacy_overhead_j_: float | None
    """A flat energy taken out of every node by versions fitted before per-call costs."""
    j_per_byte_: float
    fallback_ratio_: dict[str, float] | None
    """Per unmeasured op, its energy per byte over the reference pool's (None: all 1)."""
    power_w_: tuple[float, float, float]
    max_flops_fp_: float
    max_params_: int
    held_out_: pd.DataFrame | None

    def fit(self, frame: pd.DataFrame) -> LayerSum:
        """Fit on :func:`~estimator.layerwise.data.layer_frame` rows; CV residuals set ``q``."""
        ops = sorted(o for o, g in frame.groupby("op_type") if len(g) >= MIN_ROWS)
        if not ops:
            raise FailedPrecondition(f"layer-sum needs {MIN_ROWS} rows of one operator type")
        import pandas as pd  # only when fitting: answering with a layer sum imports no pandas

        self.ops_, self.per_call_j_, self.legacy_overhead_j_ = {}, {}, None
        held: list[pd.DataFrame] = []
        frame = frame.assign(fold=fold_ids(frame, self.folds))
        for op in ops:
            part = frame[frame["op_type"] == op].reset_index(drop=True)
            predicted = np.full(len(part), np.nan)
            for fold in sorted(set(part["fold"])):
                test = (part["fold"] == fold).to_numpy()
                model = _fit_op(part[~test], op, self.rounds, self.seed)
                predicted[test] = model.predict(part[test].to_dict("records"))
            model = _fit_op(part, op, self.rounds, self.seed)
            residual = np.log(part["energy_fp_j"].to_numpy(float)) - np.log(predicted)
            model.q_log = conformal_quantile(residual)
            self.ops_[op] = model
            held.append(part.assign(predicted_j=predicted))
        self.held_out_ = pd.concat(held, ignore_index=True)
        for op in ops:
            part = frame[frame["op_type"] == op]
            cost = fit_call_cost(op, part[WORK_COLUMN.get(op, "flops_fp")], part["energy_fp_j"])
            self.per_call_j_[op] = cost.per_call_j
        self.j_per_byte_ = _reference_j_per_byte(frame)
        ratios = FALLBACK_RATIO if self.fallback_ratio is None else self.fallback_ratio
        self.fallback_ratio_ = dict(ratios) if ratios else None
        power = frame["power_w"].to_numpy(float)
        self.power_w_ = (float(power.min()), float(np.median(power)), float(power.max()))
        self.max_flops_fp_ = float(frame["flops_fp"].max())
        self.max_params_ = int(frame["params"].max())
        return self

    # -- serving ----------------------------------------------------------------------------

    def predict_nodes(self, nodes: Sequence[NodeRecord], batch_size: int) -> LayerAnswer:
        """Energy of one forward pass of the graph whose nodes are ``nodes`` on a batch.

        Vectorised: the features of every costed node are computed at once
        (:func:`~estimator.layerwise.features.feature_table`) and each operator type's model
        is called once on all its nodes (one call per node cost about 3 ms: a 4,000-node graph
        took 11.7 s)."""
        self.check_is_fitted()
        costed = [n for n in nodes if n.op_type not in FREE_OPS]
        table = feature_table(costed, batch_size)
        op_types = np.array([n.op_type for n in costed], dtype=object)
        energy = np.zeros(len(costed))
        q_node = np.full(len(costed), max(m.q_log for m in self.ops_.values()))
        modelled = np.zeros(len(costed), dtype=bool)
        unphysical = np.zeros(len(costed), dtype=bool)
        outside: dict[str, set[str]] = {}
        for op in sorted(set(op_types.tolist())):
            measured = MODEL_OPS.get(op)
            model = self.ops_.get(measured) if measured else None
            if model is None:
                continue
            rows = op_types == op
            part = {c: v[rows] for c, v in table.items()}
            alone = model.predict_table(part)  # the layer measured alone, its call included
            unphysical[rows] = self._unphysical(part, alone)
            energy[rows] = np.maximum(alone - self._node_subtract_j(measured), 0.0)
            q_node[rows] = model.q_log
            modelled[rows] = True
            for column in RANGE_COLUMNS:
                values = part[column]
                if np.any((values < model.low[column]) | (values > model.high[column])):
                    outside.setdefault(op, set()).add(column)
        never_measured = ~modelled
        # a modelled node whose answer no CPU could give is priced, and bounded, as an
        # unmeasured one
        q_node[unphysical] = max(m.q_log for m in self.ops_.values())
        fallback_rows = never_measured | unphysical
        energy[fallback_rows] = (
            self.j_per_byte_
            * self._fallback_ratios(op_types[fallback_rows])
            * table["bytes_moved"][fallback_rows]
        )
        by_op: dict[str, float] = {}
        for op in dict.fromkeys(op_types.tolist()):  # first-seen order, as the graph lists them
            by_op[op] = float(energy[op_types == op].sum())
        fallback = _op_counts(op_types[never_measured])
        repriced = _op_counts(op_types[unphysical])
        total = float(energy.sum())
        q_weighted = float(np.dot(q_node, energy))
        q_log = q_weighted / total if total > 0 else max(m.q_log for m in self.ops_.values())
        total += self.legacy_overhead_j_ or 0.0
        warnings, widen = self._domain_warnings(costed, batch_size, by_op, fallback, outside)
        if repriced:
            listed = ", ".join(f"{op} x{n}" for op, n in sorted(repriced.items()))
            warnings.insert(
                0,
                f"layer-sum: its model answered {listed} outside what any CPU can do (faster "
                f"than {FASTEST_FLOPS:.0e} FLOP/s, or slower than {SLOWEST_FLOPS:.0e} FLOP/s "
                f"plus {SLOWEST_CALL_S:g} s a call, at the measured median power): priced per "
                "byte moved instead, an assumption; interval widened",
            )
            widen += 1
        q_log *= OOD_WIDEN**widen
        duration = total / self.power_w_[1]
        return LayerAnswer(
            energy_j=total,
            low_j=total * math.exp(-q_log),
            high_j=total * math.exp(q_log),
            duration_s=duration,
            warnings=bounded_warnings(warnings),
            by_op_j=by_op,
        )

    def _unphysical(self, table: dict[str, np.ndarray], energy_j: np.ndarray) -> np.ndarray:
        """Per node: whether its answer, as time at the measured median power, is outside
        what any CPU can do with its FLOPs and bytes (:data:`FASTEST_FLOPS` and the rest)."""
        seconds = energy_j / self.power_w_[1]
        flops = np.exp(table["log_flops"])  # >= 1: the log is of max(FLOPs, 1)
        moved = table["bytes_moved"]
        too_fast = (seconds * FASTEST_FLOPS < flops) | (seconds * FASTEST_BYTES_PER_S < moved)
        too_slow = seconds > SLOWEST_CALL_S + flops / SLOWEST_FLOPS + moved / SLOWEST_BYTES_PER_S
        return too_fast | too_slow

    def _domain_warnings(
        self,
        costed: Sequence[NodeRecord],
        batch_size: int,
        by_op: dict[str, float],
        fallback: dict[str, int],
        outside: dict[str, set[str]],
    ) -> tuple[list[str], int]:
        """What an answer must say about how far it strays from the measured layers, and how
        many times its interval is widened for it."""
        warnings: list[str] = []
        widen = 0
        if fallback:
            listed = ", ".join(f"{op} x{n}" for op, n in sorted(fallback.items()))
            if self.fallback_ratio_ is None:
                priced = (
                    f"costed at {self.j_per_byte_:.3g} J per byte moved (kernel-1 MaxPool's median)"
                )
            else:
                own = sorted(op for op in fallback if op in self.fallback_ratio_)
                shown = ", ".join(f"{op} {self.fallback_ratio_[op]:.3g}" for op in own)
                if len(own) < len(fallback):
                    other = self.fallback_ratio_.get(OTHER_OPS, 1.0)
                    shown += f"{'; ' if own else ''}others {other:.3g}"
                priced = (
                    f"priced per byte at {self.j_per_byte_:.3g} J (kernel-1 MaxPool) x each op's "
                    f"ratio to it on another CPU ({shown})"
                )
            if self.fallback_ratio_ is None:
                warnings.append(f"layer-sum: no measurements of {listed}; {priced}, an assumption")
            else:
                # the rule first: a long list of ops is what a bounded warning may cut
                warnings.append(
                    f"layer-sum: {priced}, an assumption, for ops never measured: {listed}"
                )
            total = sum(by_op.values())
            share = sum(by_op[o] for o in fallback) / total if total > 0 else 0.0
            widen += share > 0.05
        if outside:
            found = "; ".join(f"{op}: {', '.join(sorted(c))}" for op, c in sorted(outside.items()))
            warnings.append(
                f"out of domain: node features outside the measured layers' range ({found}); "
                f"interval widened"
            )
            widen += 1
        total_flops = sum(n.flops for n in costed) * batch_size
        if total_flops > self.max_flops_fp_:
            warnings.append(
                f"out of domain: {total_flops:.3g} FLOPs per forward pass, above the largest "
                f"measured layer ({self.max_flops_fp_:.3g}); interval widened"
            )
            widen += 1
        params = sum(n.weight_bytes for n in costed) // 4
        if params > self.max_params_:
            warnings.append(
                f"out of domain: {params:.3g} parameters (float32), more than the largest "
                f"measured layer ({self.max_params_:.3g}); interval widened"
            )
            widen += 1
        if len(costed) > 1:
            warnings.append(
                f"layer-sum: the data holds single layers only; this graph's {len(costed)} "
                f"nodes were predicted one by one and summed (no whole network was measured)"
            )
        return warnings, widen

    def _fallback_ratios(self, ops: np.ndarray) -> np.ndarray:
        """Each unmeasured op's energy per byte relative to the reference pool's (1 for
        versions fitted before the ratios were measured: they priced every such op as a pool)."""
        if self.fallback_ratio_ is None:
            return np.ones(len(ops))
        other = self.fallback_ratio_.get(OTHER_OPS, 1.0)
        return np.array([self.fallback_ratio_.get(str(op), other) for op in ops], float)

    def _node_subtract_j(self, op: str) -> float:
        """Energy taken out of each node of operator ``op`` (J per forward pass)."""
        if self.legacy_overhead_j_ is not None:
            return self.legacy_overhead_j_
        return self.once_fraction * self.per_call_j_.get(op, 0.0)

    # -- files ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "folds": self.folds,
            "seed": self.seed,
            "once_fraction": self.once_fraction,
            "per_call_j": dict(sorted(self.per_call_j_.items())),
            **({} if self.legacy_overhead_j_ is None else {"overhead_j": self.legacy_overhead_j_}),
            "j_per_byte": self.j_per_byte_,
            **(
                {}
                if self.fallback_ratio_ is None
                else {"fallback_ratio": dict(sorted(self.fallback_ratio_.items()))}
            ),
            "power_w": list(self.power_w_),
            "max_flops_fp": self.max_flops_fp_,
            "max_params": self.max_params_,
            "ops": {
                op: {
                    "base": [float(v) for v in m.base],
                    "q_log": m.q_log,
                    "low": m.low,
                    "high": m.high,
                    "booster": f"layer-sum.{op}.xgb.json" if m.trees is not None else None,
                    "base_columns": list(m.base_columns),
                    "tree_columns": list(m.tree_columns),
                }
                for op, m in sorted(self.ops_.items())
            },
        }

    def to_files(self) -> dict[str, bytes]:
        """``layer-sum.json`` plus one XGBoost JSON file per operator type (never pickle)."""
        payload = {"predictor": NAME, "state": self.state()}
        files = {FILE: json.dumps(payload, sort_keys=True, indent=1, allow_nan=False).encode()}
        for op, m in self.ops_.items():
            if m.trees is not None:
                files[f"layer-sum.{op}.xgb.json"] = m.trees.data
        return files

    @classmethod
    def from_files(cls, files: dict[str, bytes]) -> LayerSum:
        try:
            payload = json.loads(files[FILE])
            if payload.get("predictor") != NAME:
                raise ValueError(f"file names predictor {payload.get('predictor')!r}")
            state = payload["state"]
            model = cls(
                int(state["rounds"]),
                int(state["folds"]),
                int(state["seed"]),
                float(state.get("once_fraction", 0.0)),
                state.get("fallback_ratio") or {},
            )  # a version's own ratios, or {} for one fitted before them: never the defaults
            model.per_call_j_ = {k: float(v) for k, v in state.get("per_call_j", {}).items()}
            overhead = state.get("overhead_j")
            model.legacy_overhead_j_ = None if overhead is None else float(overhead)
            model.held_out_ = None
            model.j_per_byte_ = float(state["j_per_byte"])
            ratios = state.get("fallback_ratio")
            model.fallback_ratio_ = (
                None if ratios is None else {str(k): float(v) for k, v in ratios.items()}
            )
            model.power_w_ = tuple(float(v) for v in state["power_w"])
            model.max_flops_fp_ = float(state["max_flops_fp"])
            model.max_params_ = int(state["max_params"])
            ops: dict[str, _OpModel] = {}
            for op, s in state["ops"].items():
                trees = LazyForest(bytes(files[s["booster"]])) if s["booster"] else None
                ops[op] = _OpModel(
                    np.array(s["base"], float),
                    trees,
                    float(s["q_log"]),
                    s["low"],
                    s["high"],
                    tuple(s.get("base_columns", BASE_COLUMNS)),
                    tuple(s.get("tree_columns", TREE_COLUMNS)),
                )
                if len(ops[op].base) != len(ops[op].base_columns):
                    raise ValueError(
                        f"{op}: {len(ops[op].base)} coefficients for "
                        f"{len(ops[op].base_columns)} columns"
                    )
            if not ops:
                raise ValueError("no operator model")
            model.ops_ = ops
        except (KeyError, TypeError, ValueError) as exc:
            raise FailedPrecondition(f"layer-sum: malformed model files: {exc}") from exc
        return model
