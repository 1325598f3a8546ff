"""A GPU as the transfer model sees it: peak rates, bandwidth and power, from the catalog.

The transfer model never reads a GPU's name: it reads these numbers, so a GPU it has never
measured is described exactly like one it has. Rates are the catalog's vendor peaks (boost
clock); what a training step reaches of them is what the model learns.

From Ampere on (:attr:`joulecast.hardware.GpuSpec.has_tf32`), PyTorch runs cuDNN's FP32 work,
convolutions and recurrences (GRU, LSTM), on TF32 tensor cores by default
(``torch.backends.cudnn.allow_tf32`` is True, and PyTorch hands it to its RNN descriptor too),
while matrix products stay FP32 unless asked (``torch.backends.cuda.matmul.allow_tf32``, False
from PyTorch 1.12 on, True in 1.7-1.11): an H200 trained the paper's CNNs at 142 TFLOP/s,
twice its FP32 peak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

THREADS_PER_SM = 2048


@dataclass(frozen=True)
class GpuRates:
    """What the transfer model reads of a GPU. Rates in FLOP/s and bytes/s, power in W.

    ``conv_flops`` is the peak cuDNN runs FP32 convolutions and recurrences at under PyTorch's
    defaults (TF32 tensor cores from Ampere on, else FP32). ``idle_w`` is the catalog's idle
    power (None where no source measured it), kept for the record: the model reads no GPU's
    idle figure but its fitted share of the power limit, because a published idle is the board
    at rest, not the board between a training loop's kernels.
    """

    id: str
    fp32_flops: float
    conv_flops: float
    amp_flops: float
    """The peak FP16 mixed precision (autocast) runs matrix work at: FP16 tensor cores where
    the GPU has them, else its FP16 rate (a P100 runs FP16 at twice FP32, without tensor
    cores), never below FP32."""
    bandwidth_bps: float
    threads: float
    """Threads the GPU keeps resident: SMs × 2,048 (the per-SM maximum from Volta to Hopper's
    data-centre parts; consumer Ampere and Ada hold 1,536, a difference the fill factor
    absorbs)."""
    power_limit_w: float
    power_limit_min_w: float | None
    power_limit_max_w: float | None
    idle_w: float | None

    @classmethod
    def from_spec(cls, spec: Any) -> GpuRates:
        """From a :class:`joulecast.hardware.GpuSpec` (the catalog's record)."""
        fp32 = float(spec.fp32_tflops) * 1e12
        tf32 = spec.tensor_tf32_tflops
        conv = float(tf32) * 1e12 if spec.has_tf32 else fp32
        half = spec.tensor_fp16_tflops or spec.fp16_tflops
        return cls(
            id=spec.id,
            fp32_flops=fp32,
            conv_flops=max(conv, fp32),
            amp_flops=max(float(half) * 1e12, fp32) if half else fp32,
            bandwidth_bps=float(spec.memory_bandwidth_gbs) * 1e9,
            threads=float(spec.sm_count) * THREADS_PER_SM,
            power_limit_w=float(spec.power_limit_w),
            power_limit_min_w=_opt(spec.power_limit_min_w),
            power_limit_max_w=_opt(spec.power_limit_max_w),
            idle_w=_opt(spec.idle_power_w),
        )

    def limit_range_w(self) -> tuple[float, float]:
        """The power limits one may set: the published range, else the default limit alone
        (a lower limit is then accepted down to half of it, as NVML allows on most boards)."""
        low = self.power_limit_min_w or 0.5 * self.power_limit_w
        high = self.power_limit_max_w or self.power_limit_w
        return low, high


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
