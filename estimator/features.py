"""Graph profile -> feature columns: the one featurizer used at fit time and at serving time.

The estimator never reads FLOPs or params from a measurement row: it re-profiles the row's stored
weightless graph with :func:`joulecast.graph.profile_graph`, the very call the server makes on an
uploaded graph, so training and serving features cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from estimator.domain import shape_text
from joulecast.graph import GraphProfile, profile_graph
from joulecast.graph.record import large_activation_bytes
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd

PROFILE_FEATURES = (
    "flops_forward",
    "flops_train",
    "params",
    "flops_conv",
    "flops_dense",
    "flops_recurrent",
    "flops_other",
    "weight_bytes",
    "weight_bytes_large",
    "activation_bytes",
    "activation_bytes_conv",
    "activation_bytes_large",
    "arithmetic_intensity",
    "recurrent_steps",
    "depth",
    "node_count",
)
"""Numeric columns taken from a :class:`GraphProfile` (FLOPs per sample, bytes, counts).
``activation_bytes_conv`` is the part of ``activation_bytes`` written by convolutions;
``weight_bytes_large`` the part of ``weight_bytes`` in tensors of at least 32 MiB;
``activation_bytes_large`` the part of ``activation_bytes`` in tensors of at least 32 MiB at the
run's batch size (so it is set by :func:`run_features`, not by :func:`profile_features`)."""

RUN_FEATURES = ("batch_size", "samples", "epochs", "phase", "family")
"""Columns taken from the run (``phase`` is 'train'|'test'; ``family`` from the profile)."""

LOG_FEATURES = (
    "log_flops_phase",
    "log1p_flops_conv",
    "log1p_flops_dense",
    "log1p_flops_recurrent",
    "log1p_flops_other",
    "share_conv",
    "share_dense",
    "share_recurrent",
    "log_params",
    "log_weight_bytes",
    "log_activation_bytes",
    "log_arithmetic_intensity",
    "log1p_recurrent_steps",
    "log_depth",
    "log_node_count",
    "log_batch_size",
    "phase_train",
)
"""Family-free model inputs derived from the columns above (natural logs)."""


def profile_features(profile: GraphProfile) -> dict[str, float]:
    """The numeric profile columns of one graph (FLOPs per sample, bytes, counts)."""
    kinds: Mapping[str, int] = profile.flops_by_kind
    return {
        "flops_forward": float(profile.flops_forward),
        "flops_train": float(profile.flops_train),
        "params": float(profile.params),
        "flops_conv": float(kinds.get("conv", 0)),
        "flops_dense": float(kinds.get("dense", 0)),
        "flops_recurrent": float(kinds.get("recurrent", 0)),
        "flops_other": float(kinds.get("other", 0)),
        "weight_bytes": float(profile.weight_bytes),
        "weight_bytes_large": float(profile.weight_bytes_large),
        "activation_bytes": float(profile.activation_bytes),
        "activation_bytes_conv": float(profile.activation_bytes_by_kind.get("conv", 0)),
        "arithmetic_intensity": float(profile.arithmetic_intensity),
        "recurrent_steps": float(profile.recurrent_steps),
        "depth": float(profile.depth),
        "node_count": float(profile.node_count),
    }


def run_features(
    profile: GraphProfile, *, phase: str, batch_size: int, samples: int, epochs: int
) -> dict[str, object]:
    """One feature row: profile columns plus the run's phase, family, batch size and counts."""
    return {
        **profile_features(profile),
        "activation_bytes_large": float(large_activation_bytes(profile, batch_size)),
        "batch_size": int(batch_size),
        "samples": int(samples),
        "epochs": int(epochs),
        "phase": phase,
        "family": profile.family,
        "input_shape": shape_text(profile.input_shape),
    }


def featurize(row: object, graph_bytes: bytes) -> dict[str, object]:
    """Features of one measurement row (a ``joulecast.store.Row``) from its stored graph."""
    profile = profile_graph(graph_bytes)
    return run_features(
        profile,
        phase=row.phase,  # type: ignore[attr-defined]
        batch_size=row.batch_size,  # type: ignore[attr-defined]
        samples=row.samples,  # type: ignore[attr-defined]
        epochs=row.epochs,  # type: ignore[attr-defined]
    )


def phase_flops(frame: pd.DataFrame) -> np.ndarray:
    """FLOPs per sample of each row's phase: training FLOPs for 'train', forward for 'test'."""
    train = frame["phase"].to_numpy() == "train"
    return np.where(
        train, frame["flops_train"].to_numpy(float), frame["flops_forward"].to_numpy(float)
    )


def _log(values: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(values, 1.0))


def log_features(frame: pd.DataFrame) -> np.ndarray:
    """The :data:`LOG_FEATURES` matrix (rows x features) of a feature frame."""
    flops = phase_flops(frame)
    kinds = {k: frame[f"flops_{k}"].to_numpy(float) for k in ("conv", "dense", "recurrent")}
    total = np.maximum(frame["flops_forward"].to_numpy(float), 1.0)
    columns = [
        _log(flops),
        np.log1p(np.maximum(kinds["conv"], 0.0)),
        np.log1p(np.maximum(kinds["dense"], 0.0)),
        np.log1p(np.maximum(kinds["recurrent"], 0.0)),
        np.log1p(np.maximum(frame["flops_other"].to_numpy(float), 0.0)),
        kinds["conv"] / total,
        kinds["dense"] / total,
        kinds["recurrent"] / total,
        _log(frame["params"].to_numpy(float)),
        _log(frame["weight_bytes"].to_numpy(float)),
        _log(frame["activation_bytes"].to_numpy(float)),
        np.log(np.maximum(frame["arithmetic_intensity"].to_numpy(float), 1e-6)),
        np.log1p(np.maximum(frame["recurrent_steps"].to_numpy(float), 0.0)),
        _log(frame["depth"].to_numpy(float)),
        _log(frame["node_count"].to_numpy(float)),
        _log(frame["batch_size"].to_numpy(float)),
        (frame["phase"].to_numpy() == "train").astype(float),
    ]
    matrix = np.column_stack(columns)
    if not np.all(np.isfinite(matrix)):
        matrix = np.nan_to_num(matrix, nan=0.0, posinf=math.log(1e30), neginf=0.0)
    return matrix


# -- serving: one row, numpy only ---------------------------------------------------------------

OBSERVED_UTIL = "observed_gpu_util"
"""Optional frame column: the caller's observed mean GPU utilisation (percent) for that row."""

_LOG_MAX1 = ("params", "weight_bytes", "activation_bytes", "depth", "node_count", "batch_size")
"""Columns of :func:`log_features` taken as ``log(max(v, 1))`` (besides the phase FLOPs)."""
_LOG1P = ("flops_conv", "flops_dense", "flops_recurrent", "flops_other", "recurrent_steps")
"""Columns taken as ``log1p(max(v, 0))``."""
_SHARES = ("flops_conv", "flops_dense", "flops_recurrent")
"""Columns divided by ``max(flops_forward, 1)``."""


@dataclass(frozen=True, slots=True)
class ServeRow:
    """One phase of one request, as the predictors' fast path reads it (no pandas).

    ``log`` is the ``(1, len(LOG_FEATURES))`` :func:`log_features` matrix of the one-row frame
    ``phase_row(features, phase)``; ``flops`` its :func:`phase_flops`; ``features`` the raw
    :func:`run_features` mapping (for predictors without a fast path).
    """

    phase: str
    family: str
    flops: float
    params: float
    log: np.ndarray
    features: Mapping[str, object]
    observed_util: float | None = None

    def with_observed_util(self, util: float) -> ServeRow:
        return ServeRow(
            self.phase, self.family, self.flops, self.params, self.log, self.features, util
        )

    def frame(self) -> pd.DataFrame:
        """The one-row frame the reference (fitting) path reads: same values as this row."""
        import pandas as pd

        row: dict[str, object] = {**self.features, "phase": self.phase}
        if self.observed_util is not None:
            row[OBSERVED_UTIL] = float(self.observed_util)
        return pd.DataFrame([row])


def serve_rows(features: Mapping[str, object], phases: tuple[str, ...] = PHASES) -> dict:
    """``{phase: ServeRow}`` of one :func:`run_features` mapping, computed once for all phases.

    Element for element the same arithmetic as :func:`log_features` on a one-row frame (numpy
    ufuncs on float64 arrays), so predictions are bit-identical to the frame path.
    """
    get = features.__getitem__
    max1 = np.log(np.maximum(np.array([float(get(k)) for k in _LOG_MAX1]), 1.0))
    log1p = np.log1p(np.maximum(np.array([float(get(k)) for k in _LOG1P]), 0.0))
    total = np.maximum(np.array([float(get("flops_forward"))]), 1.0)
    shares = np.array([float(get(k)) for k in _SHARES]) / total
    intensity = np.log(np.maximum(np.array([float(get("arithmetic_intensity"))]), 1e-6))
    flops_by_phase = {"train": float(get("flops_train")), "test": float(get("flops_forward"))}
    log_flops = np.log(np.maximum(np.array([flops_by_phase[p] for p in phases]), 1.0))
    family = str(get("family"))
    params = float(get("params"))
    rows = {}
    for i, phase in enumerate(phases):
        vector = np.empty((1, len(LOG_FEATURES)))
        values = vector[0]
        values[0] = log_flops[i]
        values[1:5] = log1p[:4]
        values[5:8] = shares
        values[8:11] = max1[:3]  # params, weight_bytes, activation_bytes
        values[11] = intensity[0]
        values[12] = log1p[4]  # recurrent_steps
        values[13:16] = max1[3:]  # depth, node_count, batch_size
        values[16] = 1.0 if phase == "train" else 0.0
        if not np.all(np.isfinite(vector)):
            vector = np.nan_to_num(vector, nan=0.0, posinf=math.log(1e30), neginf=0.0)
        vector.flags.writeable = False
        rows[phase] = ServeRow(phase, family, flops_by_phase[phase], params, vector, features)
    return rows
