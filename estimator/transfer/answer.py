"""One transferred answer: a graph's training epoch on a catalogued GPU, at a batch size and a
power limit, with the interval its cross-validation earned.

The interval of an answer for a GPU nobody measured, about a network nobody measured, combines
the two held-out schemes: the leave-one-GPU-out band and the leave-one-workload-out band, their
half-widths added in quadrature (the two errors are independent: one is the GPU's departure
from its spec sheet, the other the network's from the FLOP and byte counts). A measured GPU
answering through the model (a power limit other than its default) uses the workload band
alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from estimator.transfer.artifact import TransferModel
from estimator.transfer.data import QUERY_COLUMNS, gpu_of, precision_of, work_of
from estimator.transfer.gpu import GpuRates
from estimator.transfer.model import predict
from joulecast.errors import InvalidArgument
from joulecast.graph import GraphProfile
from joulecast.measurement import PRECISIONS


@dataclass(frozen=True)
class RunCounts:
    """The run an answer is for: ``epochs`` passes over ``samples`` samples in batches of
    ``batch_size``, its matrix work in ``precision`` (one of
    :data:`joulecast.measurement.PRECISIONS`)."""

    batch_size: int
    samples: int
    epochs: int
    precision: str = "fp32"

    @property
    def amp(self) -> bool:
        return self.precision.startswith("amp-")

    @property
    def tf32(self) -> bool:
        return self.precision == "tf32"


def check_precision(
    precision: str | None, bf16_tflops: float | None, gpu: str, *, has_tf32: bool = False
) -> str:
    """The precision a GPU runs when ``precision`` (None: fp32) is asked: ``bf16_tflops`` is
    its BF16 tensor peak (None: it has none), ``has_tf32`` whether it has TF32 tensor cores
    (Ampere on). TF32 on a GPU without them is FP32, which is what runs there; InvalidArgument
    naming why a precision cannot run."""
    value = precision or "fp32"
    if value not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if value == "amp-bf16" and not bf16_tflops:
        raise InvalidArgument(f"precision amp-bf16 needs BF16 tensor cores, which {gpu} lacks")
    if value == "tf32" and not has_tf32:
        return "fp32"
    return value


def tf32_as_fp32_warning(gpu: str) -> str:
    """Said when TF32 was asked of a GPU that has no TF32 tensor cores."""
    return (
        f"precision tf32 asked: {gpu} has no TF32 tensor cores (they came with Ampere), so "
        "its matrix products run in FP32 whatever the setting: answered for fp32"
    )


def precision_warning(run: RunCounts, params: Mapping[str, float]) -> str:
    """What an answer's precision rests on."""
    if run.tf32:
        return (
            "answered for FP32 training with matrix products on TF32 tensor cores "
            "(torch.backends.cuda.matmul.allow_tf32), at the efficiency fitted on FP32 matrix "
            "products: no fitted GPU has TF32"
        )
    if not run.amp:
        return (
            "answered for FP32 training (no autocast, matrix products in FP32); precision tf32, "
            "amp-fp16 or amp-bf16 asks for TF32 matrix products or mixed precision"
        )
    return (
        f"answered for {run.precision} mixed precision (autocast): matrix work at "
        f"{params['eff_amp']:.2g} of the half-precision tensor peak (never slower than FP32), a "
        "share fitted on one workload's rows (DeepSpeech2, FP16 mixed precision)"
    )


@dataclass(frozen=True)
class TransferEstimate:
    """Energy (J) of every epoch of the run, its 90 % interval, the wall time (s), the average
    power (W) and the FLOP/s it implies."""

    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float
    power_w: float
    flop_rate: float


def check_power_limit(rates: GpuRates, power_limit_w: float | None) -> float:
    """The limit to answer at: the board's default when None; InvalidArgument outside the range
    the board accepts."""
    if power_limit_w is None:
        return rates.power_limit_w
    low, high = rates.limit_range_w()
    value = float(power_limit_w)
    if not (math.isfinite(value) and low <= value <= high):
        raise InvalidArgument(
            f"power_limit_w must lie in [{low:g}, {high:g}] W for {rates.id}, got {power_limit_w!r}"
        )
    return value


def band(model: TransferModel, gpu_measured: bool) -> tuple[float, float]:
    """(low, high) log-error quantiles an answer's interval is built from."""
    lowo = model.bands.get("lowo", (-0.5, 0.5))
    if gpu_measured:
        return lowo
    logo = model.bands.get("logo", (-0.5, 0.5))
    return -math.hypot(lowo[0], logo[0]), math.hypot(lowo[1], logo[1])


def estimate_with(
    params: Mapping[str, float],
    log_band: tuple[float, float],
    rates: GpuRates,
    profile: GraphProfile,
    run: RunCounts,
    *,
    power_limit_w: float | None = None,
    phase: str = "train",
) -> TransferEstimate:
    """The equations' answer for one phase of ``run`` with ``params`` (a transfer model's, or a
    calibrated GPU's), its interval from ``log_band`` (the (low, high) log-error quantiles,
    e.g. :func:`band`); ``power_limit_w`` None is the board's default."""
    limit = check_power_limit(rates, power_limit_w)
    row: Mapping[str, float] = {
        **work_of(profile),
        "train": 1.0 if phase == "train" else 0.0,
        "batch_size": float(run.batch_size),
        "samples": float(run.samples),
        "epochs": float(run.epochs),
        "power_limit_w": limit,
        **precision_of(run.precision),
        **gpu_of(rates),
    }
    x = {c: np.array([row[c]], dtype=float) for c in QUERY_COLUMNS}
    out = predict(params, x)
    low, high = log_band
    energy = float(out.energy_j[0])
    return TransferEstimate(
        energy_j=energy,
        energy_low_j=energy * math.exp(-high),
        energy_high_j=energy * math.exp(-low),
        duration_s=float(out.duration_s[0]),
        power_w=float(out.power_w[0]),
        flop_rate=float(out.flop_rate[0]),
    )
