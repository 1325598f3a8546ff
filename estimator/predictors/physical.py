"""Physically consistent predictors: energy = average power × duration, each bounded.

Duration per sample comes from a throughput model of the graph, fitted in log space (or in
relative error), monotone in FLOPs; power is, per phase, a log-log line on FLOPs (small models
leave the hardware idler) with a per-architecture offset, clipped to the range of power the
hardware drew in the training rows. Per sample, a
training step never takes less time, nor less energy, than a test step of the same graph
(training contains the forward pass): the training answer is raised to the test answer where the
two fits would disagree.

- ``power-duration``: per architecture key (:func:`family_key`) and phase, a log-log line of
  duration on the phase's FLOPs with slope ≥ 0 (monotone); few points borrow the phase's pooled
  slope. Uses the family, so an unseen family falls back to the pooled line.
- ``energy-power`` and ``roofline-energy``: the same two models fitted on energy instead of
  duration; the duration is then energy / power (so energy = power × duration still holds).
- ``boosted-duration``: family-free, XGBoost on log features with monotone (increasing)
  constraints on every FLOP input, over a per-phase log-log line.
- ``roofline``: family-free and additive, per phase
  ``t = c0 + (c_b + c_w·weight_bytes + c_p·[batch > 1]·weight_bytes + c_l·large_weight_bytes
  + c_s·recurrent_steps) / batch
  + Σ_k c_k·FLOPs_k + c_a·conv_activation_bytes + c_r·other_activation_bytes
  + c_g·large_activation_bytes`` with every ``c ≥ 0`` (time per FLOP of each kind, per byte
  moved, per sequential step, per batch step, plus a per-sample overhead), fitted for relative
  error.
  Monotone in every FLOP kind by construction; per sample, a larger batch is dearer only through
  activations that reach 32 MiB (fresh pages), never through the per-batch costs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partialmethod
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from estimator.features import LOG_FEATURES, ServeRow, serve_rows
from estimator.predictors.base import PhysicalPredictor, power_of
from estimator.predictors.trees import TreeModel
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd

MIN_TRAIN_OVER_TEST = 1.05
"""Floor of train / test energy and duration per sample: a training step runs the forward pass
and a backward pass (about twice its FLOPs), so 5 % more is a conservative lower bound."""
SEQUENCE_STEPS = 32
"""An RNN with at least this many recurrent steps runs over a sequence (frames), not one
flattened step per layer: it is kept apart as ``rnn-seq`` (its throughput differs)."""

_KINDS = ("conv", "dense", "recurrent", "other")
MEMORY_TERMS = (
    "weight_bytes_per_sample",
    "packed_weight_bytes_per_sample",
    "large_weight_bytes_per_sample",
    "activation_bytes_conv",
    "activation_bytes_rest",
    "activation_bytes_large",
)
"""The roofline's terms priced per byte moved (weights and activations)."""
ROOFLINE_TERMS = (
    "overhead",
    "batches_per_sample",
    *(f"flops_{k}" for k in _KINDS),
    *MEMORY_TERMS,
    "recurrent_steps_per_sample",
)
"""Columns of the roofline design, in order (seconds per sample per unit).

Per-batch costs are spread over the batch:

- a fixed cost per step (``batches_per_sample``, i.e. 1 / batch size: kernel launches, the
  optimiser's bookkeeping);
- the weights, read (and in training updated) once per batch (``weight_bytes_per_sample`` =
  weight bytes / batch size);
- above batch 1, the weights packed once per batch as well (``packed_weight_bytes_per_sample``:
  a matrix product over several samples, GEMM, copies its weight panels into packed blocks on
  every call; at batch 1 a matrix-vector product, GEMV, streams them once);
- the weights held in tensors of 32 MiB or more, once more (``large_weight_bytes_per_sample``:
  on a CPU their gradients and optimiser temporaries are fresh pages every step, see
  :data:`joulecast.graph.record.LARGE_TENSOR_BYTES`);
- the recurrent steps, run one after the other once per batch (``recurrent_steps_per_sample`` =
  steps / batch size).

With these terms the model answers batch sizes from the physics of a step instead of ignoring
them; FLOPs and activations are per sample whatever the batch.

Activations are split by who writes them: a convolution's output costs per byte far more than
its FLOPs say when its reduction is short (a 1 -> 1024-channel 3x3 convolution does 18 FLOPs per
output value and runs some 30x below the CPU's peak, while a 512 -> 512 one does 9,216 and runs
near it), and the element-wise and pooling nodes (``activation_bytes_rest``) are bound by memory
alone. One cost per activation byte cannot tell the two apart. Activations in tensors that reach
32 MiB at the batch size (``activation_bytes_large``) pay once more for fresh pages, as large
weights do."""


def family_key(family: str, recurrent_steps: float) -> str:
    """The architecture key that duration and power are fitted per: the family, with RNNs
    over sequences (``recurrent_steps`` ≥ :data:`SEQUENCE_STEPS`) apart from one-step RNNs."""
    if family == "rnn" and recurrent_steps >= SEQUENCE_STEPS:
        return "rnn-seq"
    return family


def _f(features: Mapping[str, object], key: str) -> float:
    return float(features[key])  # type: ignore[arg-type]


def _phase_flops(features: Mapping[str, object], phase: str) -> float:
    return _f(features, "flops_train" if phase == "train" else "flops_forward")


class _PowerDurationBase(PhysicalPredictor):
    """Shared: power per phase (and key), clipping, the train ≥ test tie, state plumbing."""

    def _fit_power(self, frame: pd.DataFrame, power: np.ndarray, keyed: bool) -> None:
        """Per phase, log power on log FLOPs (a line: small models leave the hardware idler),
        plus with ``keyed`` a median offset per architecture key; clipped to the measured range."""
        self.power_range_w_ = (float(power.min()), float(power.max()))
        self.power_line_: dict[str, list[float]] = {}
        self.power_offset_: dict[str, dict[str, float]] = {}
        phases = frame["phase"].to_numpy()
        keys = _keys(frame)
        logx = _log_phase_flops(frame)
        logp = np.log(power)
        for phase in PHASES:
            m = phases == phase
            if not m.any():
                continue
            slope = float(np.polyfit(logx[m], logp[m], 1)[0]) if np.ptp(logx[m]) > 0 else 0.0
            line = [float(np.mean(logp[m] - slope * logx[m])), slope]
            self.power_line_[phase] = line
            resid = logp - (line[0] + line[1] * logx)
            self.power_offset_[phase] = (
                {k: float(np.median(resid[m & (keys == k)])) for k in sorted(set(keys[m]))}
                if keyed
                else {}
            )

    def _power(self, features: Mapping[str, object], phase: str) -> float:
        key = family_key(str(features["family"]), _f(features, "recurrent_steps"))
        a, b = self.power_line_[phase]
        logx = math.log(max(_phase_flops(features, phase), 1.0))
        power = math.exp(a + b * logx + self.power_offset_[phase].get(key, 0.0))
        lo, hi = self.power_range_w_
        return min(max(power, lo), hi)

    @property
    def phases_(self) -> tuple[str, ...]:
        return tuple(p for p in PHASES if p in self.power_line_)

    primary: ClassVar[str] = "duration"
    """What the throughput model fits: ``duration`` (power × it is the energy) or ``energy``
    (the duration is energy / power). Either way energy = power × duration exactly."""

    def _target(self, y: np.ndarray, t: np.ndarray) -> np.ndarray:
        return t if self.primary == "duration" else y

    def _model(self, features: Mapping[str, object], phase: str) -> float:
        """The fitted primary quantity per sample (s or J) of one phase."""
        raise NotImplementedError

    def _parts(self, features: Mapping[str, object], phase: str) -> tuple[float, float]:
        power = self._power(features, phase)
        value = self._model(features, phase)
        return power, value if self.primary == "duration" else value / power

    def predict_parts_row(self, row: ServeRow) -> tuple[float, float]:
        if row.phase not in self.power_line_:
            return math.nan, math.nan
        power, duration = self._parts(row.features, row.phase)
        if row.phase == "train" and "test" in self.power_line_:
            test_power, test_duration = self._parts(row.features, "test")
            floor = MIN_TRAIN_OVER_TEST * max(1.0, test_power / power)
            duration = max(duration, test_duration * floor)
        return power, duration

    def _power_state(self) -> dict[str, Any]:
        return {
            "power_line": self.power_line_,
            "power_offset": self.power_offset_,
            "power_range_w": list(self.power_range_w_),
        }

    def _load_power(self, state: dict[str, Any]) -> None:
        self.power_line_ = {p: [float(v) for v in c] for p, c in state["power_line"].items()}
        self.power_offset_ = {
            p: {k: float(v) for k, v in d.items()} for p, d in state["power_offset"].items()
        }
        lo, hi = (float(v) for v in state["power_range_w"])
        if not 0 < lo <= hi:
            raise ValueError(f"bad power range {lo}..{hi} W")
        self.power_range_w_ = (lo, hi)


def _keys(frame: pd.DataFrame) -> np.ndarray:
    return np.array(
        [
            family_key(str(f), float(s))
            for f, s in zip(frame["family"], frame["recurrent_steps"], strict=True)
        ]
    )


def _log_phase_flops(frame: pd.DataFrame) -> np.ndarray:
    train = frame["phase"].to_numpy() == "train"
    flops = np.where(train, frame["flops_train"].to_numpy(float), frame["flops_forward"])
    return np.log(np.maximum(flops.astype(float), 1.0))


def _line(x: np.ndarray, y: np.ndarray, slope: float | None = None) -> list[float]:
    """[intercept, slope ≥ 0] of ``y ≈ a + b·x`` (least squares); ``slope`` given: intercept only."""
    if slope is None:
        slope = float(np.polyfit(x, y, 1)[0]) if np.ptp(x) > 0 else 0.0
        slope = max(slope, 0.0)
    return [float(np.mean(y - slope * x)), float(slope)]


class PowerDuration(_PowerDurationBase):
    """Log-log duration per architecture key and phase (slope ≥ 0) × median power of the key."""

    name: ClassVar[str] = "power-duration"
    family_free: ClassVar[bool] = False

    def __init__(self, min_points: int = 3) -> None:
        self.min_points = min_points

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        power, t = power_of(frame, y)
        self._fit_power(frame, power, keyed=True)
        phases = frame["phase"].to_numpy()
        keys = _keys(frame)
        logx = _log_phase_flops(frame)
        logt = np.log(self._target(y, t))
        self.line_: dict[str, dict[str, list[float]]] = {}
        self.pooled_: dict[str, list[float]] = {}
        for phase in self.phases_:
            in_phase = phases == phase
            pooled = _line(logx[in_phase], logt[in_phase])
            self.pooled_[phase] = pooled
            self.line_[phase] = {}
            for key in sorted(set(keys[in_phase])):
                m = in_phase & (keys == key)
                if len(np.unique(logx[m])) >= self.min_points:
                    self.line_[phase][key] = _line(logx[m], logt[m])
                else:
                    self.line_[phase][key] = _line(logx[m], logt[m], slope=pooled[1])

    def _model(self, features: Mapping[str, object], phase: str) -> float:
        key = family_key(str(features["family"]), _f(features, "recurrent_steps"))
        a, b = self.line_[phase].get(key, self.pooled_[phase])
        return math.exp(a + b * math.log(max(_phase_flops(features, phase), 1.0)))

    def state(self) -> dict[str, Any]:
        return {"line": self.line_, "pooled": self.pooled_, **self._power_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls()
        model.line_ = {
            p: {k: [float(v) for v in c] for k, c in d.items()} for p, d in state["line"].items()
        }
        model.pooled_ = {p: [float(v) for v in c] for p, c in state["pooled"].items()}
        model._load_power(state)
        return model


def _roofline_design(frame_or_features: Any, phase: str | None = None) -> np.ndarray:
    """Design rows of :data:`ROOFLINE_TERMS`; FLOPs by kind scaled to the phase's FLOPs.

    A frame gives one row per frame row (fitting); a feature mapping and its ``phase`` one row
    (serving). Both go through :func:`_design_columns`, element for element the same arithmetic.
    """
    if not isinstance(frame_or_features, Mapping):  # a frame
        frame = frame_or_features
        train = frame["phase"].to_numpy() == "train"
        forward = np.maximum(frame["flops_forward"].to_numpy(float), 1.0)
        scale = np.where(train, frame["flops_train"].to_numpy(float) / forward, 1.0)
        return np.column_stack(_design_columns(lambda c: frame[c].to_numpy(float), scale))
    features = frame_or_features
    forward = max(_f(features, "flops_forward"), 1.0)
    scale = _f(features, "flops_train") / forward if phase == "train" else 1.0
    return np.array(
        [float(v) for v in _design_columns(lambda c: np.float64(_f(features, c)), scale)]
    )


def _design_columns(get: Any, scale: Any) -> list[Any]:
    """The :data:`ROOFLINE_TERMS` columns from ``get(column)`` (an array, or a float64 scalar
    for one row) and the phase's FLOP ``scale``."""
    batch = np.maximum(get("batch_size"), 1.0)
    conv = get("activation_bytes_conv")
    weights = get("weight_bytes") / batch
    return [
        np.ones_like(batch),
        1.0 / batch,
        *(get(f"flops_{k}") * scale for k in _KINDS),
        weights,
        np.where(batch > 1, weights, 0.0),
        get("weight_bytes_large") / batch,
        conv,
        np.maximum(get("activation_bytes") - conv, 0.0),
        get("activation_bytes_large"),
        get("recurrent_steps") / batch,
    ]


def _relative_nnls(design: np.ndarray, target: np.ndarray) -> list[float]:
    """Coefficients ``c ≥ 0`` of ``target ≈ design @ c`` minimising the relative error."""
    from scipy.optimize import nnls  # fitting only: answering imports no SciPy

    weighted = design / target[:, None]
    scale = np.maximum(np.abs(weighted).max(axis=0), 1e-300)
    coef, _ = nnls(weighted / scale, np.ones(len(target)))
    return (coef / scale).tolist()


class RooflineDuration(_PowerDurationBase):
    """Additive throughput model of duration (family-free) × median power of the phase."""

    name: ClassVar[str] = "roofline"

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        power, t = power_of(frame, y)
        self._fit_power(frame, power, keyed=False)
        t = self._target(y, t)
        design = _roofline_design(frame)
        phases = frame["phase"].to_numpy()
        self.coef_ = {p: _relative_nnls(design[phases == p], t[phases == p]) for p in self.phases_}
        self.floor_ = float(t.min()) * 1e-2

    def _model(self, features: Mapping[str, object], phase: str) -> float:
        """The fitted cost per sample, never above the same graph's at batch 1 but for the
        large-tensor term (kept at this batch): sharing the per-batch costs never costs more per
        sample than running alone (without the cap the packing term, absent at batch 1, would make
        batch 2 dearer than batch 1; measured, they cost the same), while activations that
        outgrow 32 MiB at a larger batch really do make each sample dearer (the shipped CPU
        store: a 2-layer 512-channel CNN tests at 0.69 J a sample at batch 1, 0.97 J at 16)."""
        coef = np.asarray(self.coef_[phase])
        value = float(_roofline_design(features, phase) @ coef)
        if _f(features, "batch_size") > 1:
            alone = float(_roofline_design({**features, "batch_size": 1}, phase) @ coef)
            value = min(value, alone)
        return max(value, self.floor_)

    def term_parts(self, features: Mapping[str, object], phase: str) -> np.ndarray:
        """Each :data:`ROOFLINE_TERMS` term's part of the additive model's answer for one row
        (before any floor): which costs make up the answer (per-step overheads, FLOPs of each
        kind, bytes moved)."""
        return _roofline_design(features, phase) * np.asarray(self.coef_[phase], float)

    def state(self) -> dict[str, Any]:
        return {
            "terms": list(ROOFLINE_TERMS),
            "coef": self.coef_,
            "floor": self.floor_,
            **self._power_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        if list(state["terms"]) != list(ROOFLINE_TERMS):
            raise ValueError(f"roofline terms {state['terms']} differ from {ROOFLINE_TERMS}")
        model = cls()
        model.coef_ = {p: [float(v) for v in c] for p, c in state["coef"].items()}
        if any(len(c) != len(ROOFLINE_TERMS) or min(c) < 0 for c in model.coef_.values()):
            raise ValueError("roofline coefficients must be one per term and ≥ 0")
        model.floor_ = float(state["floor"])
        model._load_power(state)
        return model


class EnergyPower(PowerDuration):
    """Log-log *energy* per architecture key and phase (slope ≥ 0); duration = energy / power.

    Where power and duration are each noisy but their product is steady (a CPU-time energy
    estimate under a busy machine), fitting the product directly is the steadier choice."""

    name: ClassVar[str] = "energy-power"
    primary: ClassVar[str] = "energy"


class RooflineEnergy(RooflineDuration):
    """The additive model on energy (J per FLOP of each kind, per byte, per step; all ≥ 0);
    duration = energy / power."""

    name: ClassVar[str] = "roofline-energy"
    primary: ClassVar[str] = "energy"


_MONOTONE_UP = (
    "log_flops_phase",
    "log1p_flops_conv",
    "log1p_flops_dense",
    "log1p_flops_recurrent",
    "log1p_flops_other",
)
"""Inputs in which :class:`BoostedDuration`'s duration may only rise (XGBoost constraints)."""


def _monotone_up(params: dict[str, Any]) -> dict[str, Any]:
    """XGBoost ``params`` with the trees' output held non-decreasing in every input of
    :data:`_MONOTONE_UP` (the FLOP inputs of :data:`LOG_FEATURES`)."""
    constraints = tuple(1 if f in _MONOTONE_UP else 0 for f in LOG_FEATURES)
    return {**params, "monotone_constraints": "(" + ",".join(map(str, constraints)) + ")"}


class BoostedDuration(TreeModel, _PowerDurationBase):
    """Duration from XGBoost on the family-free log features, monotone increasing in every
    FLOP input, over a per-phase log-log line in FLOPs (the base margin: trees do not
    extrapolate, the line does) × the per-phase power line."""

    name: ClassVar[str] = "boosted-duration"
    model_file: ClassVar[str] = "boosted-duration.xgb.json"

    def _params(self) -> dict[str, Any]:
        return _monotone_up(super()._params())

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        power, t = power_of(frame, y)
        self._fit_power(frame, power, keyed=False)
        logt = np.log(self._target(y, t))
        logx = _log_phase_flops(frame)
        phases = frame["phase"].to_numpy()
        self.line_ = {p: _line(logx[phases == p], logt[phases == p]) for p in self.phases_}
        coef = np.array([self.line_[p] for p in phases])
        self._train(frame, logt, coef[:, 0] + coef[:, 1] * logx)

    def _model(self, features: Mapping[str, object], phase: str) -> float:
        row = serve_rows(features, (phase,))[phase]
        a, b = self.line_[phase]
        margin = self._margin(row, np.array([a + b * math.log(max(row.flops, 1.0))]))
        return math.exp(float(margin[0]))

    def state(self) -> dict[str, Any]:
        return {"line": self.line_, **self._tree_state(), **self._power_state()}

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        model = cls(**state["hyperparameters"])
        model._load_trees(state, blobs)
        model._load_power(state)
        return model


MAX_CORRECTION = math.log(2.0)
"""Bound of :class:`RooflineBoosted`'s correction in log space: the trees may move the roofline's
answer by at most a factor 2 either way, so the physics (additive, monotone costs) stays the
backbone and a tree that never saw such a graph cannot run away with the answer."""
MIN_CORRECTION_ROWS = 8
"""Held-out residuals below which :class:`RooflineBoosted` learns no correction."""


class RooflineBoosted(TreeModel, RooflineEnergy):
    """The roofline's energy × a bounded correction learnt from its held-out errors.

    A single cost per FLOP of each kind cannot know that a 1→1024-channel convolution runs far
    below the CPU's peak while a 512→512 one runs near it: such efficiencies show up as
    residuals that depend on the graph's shape. The correction is fitted on *leave-one-
    configuration-out* residuals of the roofline (each configuration's residual comes from a
    roofline that never saw it: in-fit residuals would teach the trees the roofline's own
    overfit), by XGBoost on the log features, increasing in every FLOP input (so the product
    stays monotone in FLOPs), and clipped to ±:data:`MAX_CORRECTION`.
    """

    name: ClassVar[str] = "roofline-boosted"
    model_file: ClassVar[str] = "roofline-boosted.xgb.json"

    # TreeModel's hyperparameters with other defaults: more, smaller steps, stronger L2
    __init__ = partialmethod(
        TreeModel.__init__,
        n_estimators=100,
        learning_rate=0.1,
        min_child_weight=3.0,
        reg_lambda=5.0,
    )

    def _params(self) -> dict[str, Any]:
        return _monotone_up(super()._params())

    def _fit(self, frame: pd.DataFrame, y: np.ndarray) -> None:
        super()._fit(frame, y)
        design = _roofline_design(frame)
        phases = frame["phase"].to_numpy()
        groups = frame["config_id"].to_numpy()
        held_out = np.full(len(frame), np.nan)
        for phase in self.phases_:
            m = phases == phase
            for group in np.unique(groups[m]):
                out = m & (groups == group)
                rest = m & ~out
                if rest.sum() < len(ROOFLINE_TERMS):
                    continue
                coef = np.asarray(_relative_nnls(design[rest], y[rest]))
                held_out[out] = np.maximum(design[out] @ coef, self.floor_)
        known = np.isfinite(held_out)
        self.model_json_, self.forest_ = None, None
        if known.sum() < MIN_CORRECTION_ROWS:
            self.notes = [
                f"{self.name}: {int(known.sum())} held-out residual(s), "
                f"{MIN_CORRECTION_ROWS} needed: no correction, the roofline answers alone"
            ]
            return
        residual = np.clip(np.log(y[known] / held_out[known]), -MAX_CORRECTION, MAX_CORRECTION)
        self._train(frame[known], residual, np.zeros(int(known.sum())))

    def _model(self, features: Mapping[str, object], phase: str) -> float:
        if self.forest_ is None:
            return super()._model(features, phase)
        row = serve_rows(features, (phase,))[phase]
        margin = float(self._margin(row, None)[0])  # trained over a zero margin = base_score 0
        correction = math.exp(min(max(margin, -MAX_CORRECTION), MAX_CORRECTION))
        return max(super()._model(features, phase) * correction, self.floor_)

    def state(self) -> dict[str, Any]:
        trees = {**self._tree_state(), "line": {}}
        if self.forest_ is None:
            trees["model_file"] = None
        return {**super().state(), **trees}

    def blobs(self) -> dict[str, bytes]:
        return {} if self.forest_ is None else super().blobs()

    @classmethod
    def from_state(cls, state: dict[str, Any], blobs: dict[str, bytes]) -> Self:
        base = RooflineEnergy.from_state(state, blobs)
        model = cls(**state["hyperparameters"])
        model.coef_, model.floor_ = base.coef_, base.floor_
        model._load_power(state)
        model.model_json_, model.forest_ = None, None
        if state["model_file"] is not None:
            model._load_trees(state, blobs)
        elif list(state["features"]) != list(LOG_FEATURES):
            raise ValueError(f"model features {state['features']} differ from {LOG_FEATURES}")
        return model
