"""Loading the measurement store into the frames the report works on (pandas at this edge only).

Derived columns, units in the names:
``flops_phase`` (FLOPs per sample of the phase: forward at test, train = 3 x forward at training),
``flops_total`` (flops_phase x samples x epochs), ``flop_rate`` (FLOP/s = flops_total /
duration_s) and ``power_avg_w`` (energy_j / duration_s).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound
from joulecast.measurement import is_estimate
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

GROUP_KEYS = ("config_id", "family", "variant", "phase", "samples", "batch_size", "epochs")
_MEAN_COLUMNS = (
    "flops_forward",
    "flops_train",
    "params",
    "duration_s",
    "energy_j",
    "energy_dynamic_j",
    "idle_power_w",
    "power_mean_w",
    "gpu_util_mean",
    "mem_util_mean",
    "mem_used_mean_mib",
    "flops_phase",
    "flops_total",
    "flop_rate",
    "power_avg_w",
)


@dataclass(frozen=True)
class ReportData:
    """The rows of one hardware, ready for figures and claims.

    ``runs``: every usable row (one per run, phase and repeat). ``configs``: repeats averaged per
    (configuration, variant, phase, samples, batch size, epochs), with ``repeats`` and the
    ``run_key`` of the first repeat (for its trace). ``reference``: the paper-variant
    configurations at the reference sample count, batch size and epochs (the most frequent one).
    """

    hardware: str
    runs: pd.DataFrame
    configs: pd.DataFrame
    reference: pd.DataFrame
    reference_samples: int
    reference_batch_size: int
    reference_epochs: int
    sources: dict[str, int]
    estimated: bool
    dropped_estimates: int
    devices: tuple[str, ...]
    device_names: tuple[str, ...]
    cpu_models: tuple[str, ...]
    rescaled: bool = False
    """True when no workload was shared by most configurations (imported data, where every run
    has its own sample count and batch): ``reference`` then holds every configuration with its
    energy and duration rescaled to ``reference_samples`` samples and one epoch, at the batch
    size most configurations share (``reference_batch_size``; 0: batch as measured)."""


def choose_hardware(store: MeasurementStore, hardware: str | None) -> str:
    names = sorted(store.hardware_names())
    if hardware is not None:
        if hardware not in names:
            known = ", ".join(names) or "none"
            raise NotFound(f"no rows for hardware {hardware!r} in {store.path} (known: {known})")
        return hardware
    if not names:
        raise FailedPrecondition(f"the measurement store {store.path} holds no rows")
    if len(names) > 1:
        raise InvalidArgument(
            f"{store.path} holds several hardware ({', '.join(names)}); choose one with --hardware"
        )
    return names[0]


def load(db_path: str | Path, hardware: str | None = None) -> tuple[ReportData, MeasurementStore]:
    """Read the ``ok`` rows of one hardware. Returns the data and the open store (for traces).

    When measured and estimated rows are mixed, the estimated ones are left out (an estimate is
    never judged as a measurement); when all rows are estimates, ``estimated`` is true.
    """
    path = Path(db_path)
    if not path.is_file():
        raise NotFound(f"no measurement store at {path}")
    store = MeasurementStore(path, read_only=True)
    try:
        name = choose_hardware(store, hardware)
        rows = store.rows(status="ok", hardware=name)
    except BaseException:
        store.close()
        raise
    frame = pd.DataFrame([asdict(r) for r in rows])
    if frame.empty:
        store.close()
        raise FailedPrecondition(f"no successful measurements for hardware {name!r} in {path}")
    frame = frame[frame["energy_j"].notna() & (frame["duration_s"].fillna(0) > 0)].copy()
    if frame.empty:
        store.close()
        raise FailedPrecondition(f"no rows with energy and duration for hardware {name!r}")
    sources = frame["energy_source"].fillna("unknown").astype(str)
    estimate = sources.map(is_estimate) | frame["energy_is_estimate"].fillna(False).astype(bool)
    dropped = 0
    if estimate.any() and not estimate.all():
        dropped = int(estimate.sum())
        log.warning("leaving out %d estimated rows next to measured ones", dropped)
        frame = frame[~estimate].copy()
        sources = sources[~estimate]
    estimated = bool(estimate.all())
    frame = _derive(frame)
    configs = aggregate(frame)
    paper = configs[configs["variant"] == "paper"]
    basis = paper if not paper.empty else configs
    combo = Counter(zip(basis["samples"], basis["batch_size"], basis["epochs"], strict=True))
    # the most frequent (samples, batch, epochs); ties go to the largest sample count
    (samples, batch, epochs), _ = max(combo.items(), key=lambda kv: (kv[1], kv[0]))
    reference = basis[
        (basis["samples"] == samples) & (basis["batch_size"] == batch) & (basis["epochs"] == epochs)
    ].reset_index(drop=True)
    rescaled = len(reference) < MIN_REFERENCE_SHARE * len(basis)
    if rescaled:
        samples, batch, epochs = RESCALED_SAMPLES, common_batch(basis), 1
        reference = rescaled_reference(basis, batch)
    data = ReportData(
        hardware=name,
        runs=frame.reset_index(drop=True),
        configs=configs,
        reference=reference,
        reference_samples=int(samples),
        reference_batch_size=int(batch),
        reference_epochs=int(epochs),
        sources=dict(Counter(sources)),
        estimated=estimated,
        dropped_estimates=dropped,
        devices=_distinct(frame["device"]),
        device_names=_distinct(frame["device_name"]),
        cpu_models=_distinct(frame["cpu_model"]),
        rescaled=rescaled,
    )
    return data, store


MIN_REFERENCE_SHARE = 0.5
"""The most frequent workload must cover this share of configurations, else rows are rescaled."""
RESCALED_SAMPLES = 1000


def common_batch(configs: pd.DataFrame) -> int:
    """The batch size most configurations ran at, or 0 (batch as measured) when none is shared
    by :data:`MIN_REFERENCE_SHARE` of them (imported data with a batch per run)."""
    per_config = configs.groupby("config_id")["batch_size"].agg(lambda b: set(b))
    counts = Counter(b for batches in per_config for b in batches)
    if not counts:
        return 0
    batch, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return int(batch) if n >= MIN_REFERENCE_SHARE * len(per_config) else 0


def rescaled_reference(configs: pd.DataFrame, batch: int) -> pd.DataFrame:
    """One row per configuration and phase, rescaled to :data:`RESCALED_SAMPLES` samples.

    With ``batch`` > 0 only that batch size is kept: a batch-size sweep of one architecture is
    not several architectures, and per-sample cost depends on the batch. A configuration
    measured at several sample counts (a dataset-size sweep beside a timed window) keeps its
    longest measurement.
    """
    rows = configs[configs["batch_size"] == batch] if batch else configs
    keys = ["config_id", "variant", "phase"] + ([] if batch else ["batch_size"])
    longest = rows.sort_values("samples", ascending=False, kind="stable")
    return rescale(longest.drop_duplicates(keys), RESCALED_SAMPLES)


def rescale(configs: pd.DataFrame, samples: int) -> pd.DataFrame:
    """Every configuration's energy and duration as if it had run ``samples`` samples, 1 epoch.

    Energy per sample is what the estimator models too; power and FLOP/s are unchanged.
    """
    out = configs.copy()
    factor = samples / (out["samples"] * out["epochs"])
    for col in ("energy_j", "energy_std_j", "energy_dynamic_j", "duration_s", "flops_total"):
        if col in out:
            out[col] = out[col] * factor
    out["samples"], out["epochs"] = samples, 1
    return out.reset_index(drop=True)


def _distinct(column: pd.Series) -> tuple[str, ...]:
    return tuple(sorted({str(v) for v in column.dropna()}))


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("flops_forward", "flops_train", "params"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("gpu_util_mean", "mem_util_mean", "idle_power_w", "mem_used_mean_mib"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["flops_phase"] = np.where(
        frame["phase"] == "train", frame["flops_train"], frame["flops_forward"]
    )
    frame["flops_total"] = frame["flops_phase"] * frame["samples"] * frame["epochs"]
    frame["flop_rate"] = frame["flops_total"] / frame["duration_s"]
    frame["power_avg_w"] = frame["energy_j"] / frame["duration_s"]
    return frame


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """Average repeats: one row per configuration, variant, phase and workload."""
    keys = list(GROUP_KEYS)
    grouped = frame.groupby(keys, sort=True, dropna=False)
    means = grouped[list(_MEAN_COLUMNS)].mean()
    firsts = grouped[["run_key", "num_layers", "hidden_size"]].first()
    counts = grouped.size().rename("repeats")
    spread = grouped["energy_j"].std().rename("energy_std_j")
    out = pd.concat([means, firsts, counts, spread], axis=1).reset_index()
    return out


def family_key(family: str, variant: str) -> str:
    """The colour/legend key of a row: the frames RNN is kept apart from the paper's RNN."""
    return f"{family}-frames" if variant == "frames" else family
