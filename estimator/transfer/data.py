"""Measured GPU rows -> the transfer model's query arrays (pandas at this edge only).

Each row's work comes from its stored weightless graph through
:func:`joulecast.graph.profile_graph` (the call the server makes on an upload); its GPU from the
catalog by the row's hardware id. Rows of hardware the catalog does not know, estimated rows and
rows without a graph are left out, and the caller is told how many and why.
"""

from __future__ import annotations

import logging
import math
import posixpath
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from estimator.transfer.gpu import GpuRates
from joulecast.graph import GraphProfile, profile_graph
from joulecast.measurement import PHASES, Row, is_estimate
from joulecast.store import MeasurementStore

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

WORK_COLUMNS = (
    "flops_conv",
    "flops_dense",
    "flops_recurrent",
    "flops_other",
    "activation_bytes",
    "weight_bytes",
    "input_bytes",
    "node_count",
    "recurrent_steps",
)
"""Per-sample work of one forward pass, from the graph (FLOPs, bytes, counts)."""
RUN_COLUMNS = ("train", "batch_size", "samples", "epochs", "power_limit_w", "amp", "tf32")
GPU_COLUMNS = (
    "fp32_flops",
    "conv_flops",
    "amp_flops",
    "bandwidth_bps",
    "threads",
    "tdp_w",
    "idle_w",
)
QUERY_COLUMNS = WORK_COLUMNS + RUN_COLUMNS + GPU_COLUMNS
"""What :func:`estimator.transfer.model.predict` reads, one array each."""

BYTES_PER_ELEMENT = 4


def work_of(profile: GraphProfile) -> dict[str, float]:
    """The per-sample work columns of one graph profile."""
    kinds = profile.flops_by_kind
    input_elements = math.prod(profile.input_shape) if profile.input_shape else 0
    return {
        "flops_conv": float(kinds.get("conv", 0)),
        "flops_dense": float(kinds.get("dense", 0)),
        "flops_recurrent": float(kinds.get("recurrent", 0)),
        "flops_other": float(kinds.get("other", 0)),
        "activation_bytes": float(profile.activation_bytes),
        "weight_bytes": float(profile.weight_bytes),
        "input_bytes": float(input_elements * BYTES_PER_ELEMENT),
        "node_count": float(profile.node_count),
        "recurrent_steps": float(profile.recurrent_steps),
    }


def precision_of(precision: str) -> dict[str, float]:
    """The run columns of a precision (:data:`joulecast.measurement.PRECISIONS`)."""
    return {
        "amp": 1.0 if precision.startswith("amp-") else 0.0,
        "tf32": 1.0 if precision == "tf32" else 0.0,
    }


def gpu_of(rates: GpuRates) -> dict[str, float]:
    return {
        "fp32_flops": rates.fp32_flops,
        "conv_flops": rates.conv_flops,
        "amp_flops": rates.amp_flops,
        "bandwidth_bps": rates.bandwidth_bps,
        "threads": rates.threads,
        "tdp_w": rates.power_limit_w,
        "idle_w": math.nan if rates.idle_w is None else rates.idle_w,
    }


def query_arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The model's input arrays from a frame holding :data:`QUERY_COLUMNS`."""
    return {c: frame[c].to_numpy(dtype=float) for c in QUERY_COLUMNS}


@dataclass(frozen=True)
class TrainingSet:
    """Measured rows ready to fit: one row per measurement with its work, run, GPU and the
    measured ``duration_s``, ``power_w``, ``energy_j``; ``hardware`` and ``workload`` label the
    groups that cross-validation holds out. ``skipped`` counts what was left out, by reason."""

    frame: pd.DataFrame
    skipped: Mapping[str, int]


SWEEP_PLANS = ("ecnas",)
"""Plans whose rows sweep many architectures of one kind (NAS-Bench cells): one workload."""


def workload_names(frame: pd.DataFrame) -> pd.Series:
    """The workload of each row, for leave-one-workload-out: the rows of one network (one
    graph, at any batch size, power limit or optimizer) are one workload, named by the common
    prefix of their configuration ids; a plan of :data:`SWEEP_PLANS` is one workload."""
    names: dict[str, str] = {}
    for sha, ids in frame.groupby("graph")["config_id"]:
        distinct = sorted(set(ids))
        prefix = distinct[0] if len(distinct) == 1 else posixpath.commonpath(distinct)
        names[str(sha)] = prefix or str(sha)[:12]
    by_graph = frame["graph"].map(names)
    sweep = frame["plan"].str.startswith(SWEEP_PLANS)
    return by_graph.where(~sweep, frame["plan"])


def from_stores(
    paths: Iterable[str | Path],
    gpu_lookup: Callable[[str], GpuRates | None],
    phases: tuple[str, ...] = PHASES,
) -> TrainingSet:
    """Every usable measured row of the stores at ``paths``.

    ``gpu_lookup`` maps a hardware id to its figures (None: not a catalogued GPU, left out).
    """
    records: list[dict[str, object]] = []
    skipped: Counter[str] = Counter()
    for path in paths:
        with MeasurementStore(path, read_only=True) as store:
            profiles: dict[str, GraphProfile | None] = {}
            for row in store.rows(status="ok"):
                reason = _unusable(row, phases)
                if reason:
                    skipped[reason] += 1
                    continue
                rates = gpu_lookup(row.hardware)
                if rates is None:
                    skipped[f"hardware {row.hardware} is not a catalogued GPU"] += 1
                    continue
                sha = row.graph_sha256 or ""
                if sha not in profiles:
                    graph = store.get_graph(sha) if sha else None
                    profiles[sha] = profile_graph(graph) if graph else None
                profile = profiles[sha]
                if profile is None:
                    skipped["no stored graph"] += 1
                    continue
                records.append(_record(row, profile, rates))
    if skipped:
        log.info("left out: %s", dict(skipped))
    import pandas as pd  # fitting only: answering imports no pandas

    frame = pd.DataFrame.from_records(records)
    if not frame.empty:
        frame["workload"] = workload_names(frame)
    return TrainingSet(frame, dict(skipped))


def _unusable(row: Row, phases: tuple[str, ...]) -> str | None:
    if row.phase not in phases:
        return f"phase {row.phase}"
    if row.energy_is_estimate or is_estimate(row.energy_source or ""):
        return "estimated energy"
    if not (row.energy_j and row.energy_j > 0 and row.duration_s and row.duration_s > 0):
        return "no energy or duration"
    return None


def _record(row: Row, profile: GraphProfile, rates: GpuRates) -> dict[str, object]:
    limit = getattr(row, "power_limit_w", None)
    return {
        "hardware": row.hardware,
        "plan": row.plan,
        "graph": row.graph_sha256,
        "config_id": row.config_id,
        "phase": row.phase,
        "repeat": row.repeat,
        "energy_source": row.energy_source or "unknown",
        **work_of(profile),
        "train": 1.0 if row.phase == "train" else 0.0,
        "batch_size": float(row.batch_size),
        "samples": float(row.samples),
        "epochs": float(row.epochs),
        "power_limit_w": math.nan if limit is None else float(limit),
        **precision_of(row.precision or "fp32"),
        **gpu_of(rates),
        "duration_s": float(row.duration_s or 0.0),
        "energy_j": float(row.energy_j or 0.0),
        "power_w": float(row.energy_j or 0.0) / float(row.duration_s or 1.0),
    }
