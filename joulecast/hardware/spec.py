"""One catalogued GPU: its published figures, units in the field names.

Every figure is the vendor's peak at the boost clock (or a figure derived from published unit
counts and clocks, said so in ``notes``), never a measurement; the one exception,
``idle_power_w``, is filled only where a cited source measured or published it. ``None`` means
the GPU lacks the feature (no tensor cores before Volta, no BF16/TF32 before Ampere) or that no
source gave the figure, which ``notes`` then says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from joulecast.errors import InvalidArgument

Precision = Literal["fp32", "fp16", "tensor-fp16", "tensor-bf16", "tensor-tf32"]
"""Arithmetic a training step can run at: plain FP32/FP16 on the CUDA cores, or dense matrix
products on the tensor cores (FP16 or BF16 inputs with FP32 accumulation, TF32 inputs)."""

PRECISIONS: tuple[Precision, ...] = get_args(Precision)

FIGURES = (
    "fp32_tflops",
    "fp16_tflops",
    "tensor_fp16_tflops",
    "tensor_bf16_tflops",
    "tensor_tf32_tflops",
    "memory_gib",
    "memory_bandwidth_gbs",
    "sm_count",
    "boost_clock_mhz",
    "power_limit_w",
    "power_limit_min_w",
    "power_limit_max_w",
    "idle_power_w",
)
"""The numeric fields of :class:`GpuSpec`, in the order listings show them."""

_PRECISION_FIELD: dict[str, str] = {
    "fp32": "fp32_tflops",
    "fp16": "fp16_tflops",
    "tensor-fp16": "tensor_fp16_tflops",
    "tensor-bf16": "tensor_bf16_tflops",
    "tensor-tf32": "tensor_tf32_tflops",
}


@dataclass(frozen=True)
class GpuSpec:
    """Published figures of one GPU model.

    Throughputs in TFLOP/s (10^12 FLOP per second, an FMA counted as two), dense (no
    structured sparsity). ``tensor_fp16_tflops`` is FP16 inputs with FP32 accumulation, the rate
    mixed-precision training runs at: GeForce cards run it at half their FP16-accumulate rate.
    Memory in GiB: the vendor's nominal capacity (GPU memory "GB" are binary; NVML reports a
    little less as usable). Bandwidth in GB/s (10^9 bytes per second), clock in MHz, power in
    W. ``power_limit_w`` is the board's default power limit (its TDP);
    ``power_limit_min_w``/``power_limit_max_w`` the range NVML lets one set, where published.
    """

    id: str
    name: str
    nvml_names: tuple[str, ...]
    architecture: str
    compute_capability: tuple[int, int]
    form_factor: str
    fp32_tflops: float
    fp16_tflops: float | None
    tensor_fp16_tflops: float | None
    tensor_bf16_tflops: float | None
    tensor_tf32_tflops: float | None
    memory_gib: float
    memory_bandwidth_gbs: float
    sm_count: int
    boost_clock_mhz: int
    power_limit_w: float
    power_limit_min_w: float | None
    power_limit_max_w: float | None
    idle_power_w: float | None
    sources: Mapping[str, str] = field(hash=False)
    """Citation (document, URL) per figure group: compute, memory, power, power_range, idle_power."""
    notes: tuple[str, ...] = ()
    """Why a figure is missing, derived or differs between sources."""

    @property
    def has_tf32(self) -> bool:
        """TF32 tensor cores (Ampere on): where PyTorch may run FP32 work as TF32."""
        return bool(self.tensor_tf32_tflops) and self.compute_capability >= (8, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures: the compute capability as ``"8.6"``, lists for tuples."""
        return {
            "id": self.id,
            "name": self.name,
            "nvml_names": list(self.nvml_names),
            "architecture": self.architecture,
            "compute_capability": "{}.{}".format(*self.compute_capability),
            "form_factor": self.form_factor,
            **{name: getattr(self, name) for name in FIGURES},
            "sources": dict(self.sources),
            "notes": list(self.notes),
        }


def peak_flops(spec: GpuSpec, precision: Precision) -> float | None:
    """Peak throughput of ``spec`` at ``precision``, in FLOP/s; ``None`` where it has none.

    A vendor peak at the boost clock: real steps reach a fraction of it.
    """
    try:
        name = _PRECISION_FIELD[precision]
    except KeyError:
        raise InvalidArgument(f"unknown precision {precision!r}; one of {PRECISIONS}") from None
    tflops: float | None = getattr(spec, name)
    return None if tflops is None else tflops * 1e12
