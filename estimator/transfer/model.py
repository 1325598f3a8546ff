"""The GPU transfer model: energy of an epoch = average power × duration, from a graph's work,
the batch size, the power limit and a GPU's published figures.

One step of training (``passes`` = 3: forward, and a backward pass of about twice its work;
a test step is one pass) takes, on the GPU,

    t_gpu = passes · B · Σ_k F_k / (peak_k · eff_k · fill_k)     FLOPs of each kind at its peak
          ⊕ passes · B · A / (bandwidth · eff_mem · fill)        activations written and read
          + weight_passes · W / bandwidth                        weights (and, training, the
                                                                 gradients and optimiser state)
          + passes · (nodes · kernel_s + steps_rec · rec_s)      a floor per kernel and per
                                                                 sequential recurrent step

(⊕: compute and activation traffic overlap, their smooth maximum of order ``roofline_order``),
where ``fill = r / (1 + r)`` is the share of the GPU a kernel keeps busy: ``r`` its parallel
elements (a layer's output at the batch; for a recurrence, one step's) over ``fill`` times the
GPU's resident threads. On the host, ``t_host = step_s · passes / 3 + B · (sample_s + in_bytes ·
input_s_per_byte)`` (the training loop, a third of it for a forward-only test step; the data
pipeline per sample and per input byte). The two overlap as far as the loader runs ahead: ``t_step`` is their smooth
maximum of order ``overlap`` (1: they add up; large: the slower one alone).

While a kernel runs the board draws ``idle + (limit − idle) · intensity``, where intensity
weighs compute-bound time by ``busy_compute`` and memory-bound time by ``busy_memory`` (capped
at 1); the average over the step is ``idle + (busy power − idle) · t_gpu / t_step``. A power
limit below that busy power holds the board at the limit, and the GPU lowers its clocks: its
compute time grows by ``((busy − idle) / (limit − idle)) ** limit_exponent`` (dynamic power
rises about as the cube of the clock, so the exponent is near 1/3).

Every parameter is shared by all GPUs; a GPU enters only through its figures (:class:`GpuRates`),
so the same parameters answer for a GPU that was never measured. By construction each answer
stays inside the physics: achieved FLOP/s below the peaks (every efficiency is at most 1),
average power inside [idle, power limit], a test step never dearer than a training step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

KINDS = ("conv", "dense", "recurrent", "other")

PARAMS: dict[str, tuple[float, float, float]] = {
    # name: (initial value, lower bound, upper bound)
    "eff_conv": (0.4, 1e-4, 1.0),
    "eff_dense": (0.5, 1e-4, 1.0),
    "eff_recurrent": (0.2, 1e-4, 1.0),
    "eff_other": (0.05, 1e-5, 1.0),
    "eff_mem": (0.3, 1e-3, 1.0),
    "weight_passes": (8.0, 1.0, 64.0),
    "kernel_s": (5e-6, 1e-8, 1e-3),
    "rec_s": (1e-5, 1e-8, 1e-2),
    "step_s": (2e-3, 1e-6, 1.0),
    "sample_s": (1e-6, 1e-9, 1e-3),
    "fill": (0.5, 1e-3, 100.0),
    "fill_rec": (0.5, 1e-3, 100.0),
    "input_s_per_byte": (1e-9, 1e-15, 1e-5),
    "overlap": (2.0, 1.0, 16.0),
    "roofline_order": (2.0, 1.0, 16.0),
    "busy_compute": (0.8, 0.01, 1.0),
    "busy_memory": (0.5, 0.01, 1.0),
    "idle_share": (0.2, 0.02, 0.6),
    "limit_exponent": (0.4, 0.05, 2.0),
    "eff_amp": (0.3, 1e-3, 1.0),
    "rec_tf32": (1.0, 1e-3, 1.0),
}
"""The model's parameters with the box each is fitted in (units in the module docstring:
efficiencies are fractions of a peak, ``*_s`` seconds, ``idle_share`` of the power limit)."""

LEGACY_DEFAULTS: dict[str, float] = {"eff_amp": 1.0, "rec_tf32": 1e-3}
"""Parameters added after models were published, each with the value under which a model
written before it answers exactly as it did then (mixed precision at the full FP16 peak; no
such model ever served a mixed-precision answer). A stored model lacking one reads it at this
value, and a parameter at this value is left out of what is stored (:func:`stored_params`), so
an old file keeps its version hash."""

FIXED_PARAMS = ("rec_tf32",)
"""Parameters physics sets and no measured row can move: the fit holds them at their initial
value (a calibration at its prior's). ``rec_tf32`` is 1 when FP32 recurrences run, as FP32
convolutions do, at the peak cuDNN reaches under PyTorch's defaults (TF32 tensor cores from
Ampere on: PyTorch hands ``torch.backends.cudnn.allow_tf32``, True by default, to its RNN
descriptor as to its convolutions); every GPU measured so far predates TF32, where that peak is
the FP32 one. Its legacy value keeps a model written before it at the FP32 peak: answers for
Ampere and later read 2-15x less recurrent throughput there."""

TRAIN_PASSES = 3.0
TEST_WEIGHT_PASSES = 1.0
"""A test step reads each weight once; a training step also writes gradients and runs the
optimiser over weights and its state (``weight_passes`` is fitted)."""


@dataclass(frozen=True)
class Prediction:
    """Arrays, one value per query row: epoch duration in s, average power in W, energy in J,
    the share of the step the GPU is busy, and the achieved FLOP/s."""

    duration_s: np.ndarray
    power_w: np.ndarray
    energy_j: np.ndarray
    busy: np.ndarray
    flop_rate: np.ndarray


def initial_params() -> dict[str, float]:
    return {name: init for name, (init, _, _) in PARAMS.items()}


def predict(params: Mapping[str, float], x: Mapping[str, np.ndarray]) -> Prediction:
    """The model on query arrays ``x`` (one entry per row):

    - work per sample, forward: ``flops_conv``, ``flops_dense``, ``flops_recurrent``,
      ``flops_other`` (FLOPs), ``activation_bytes``, ``weight_bytes``, ``input_bytes``,
      ``node_count``, ``recurrent_steps``;
    - the run: ``train`` (1 or 0), ``batch_size``, ``samples``, ``epochs``, ``power_limit_w``
      (NaN: the board's default), ``amp`` (1: FP16/BF16 mixed precision, 0: FP32), ``tf32``
      (1: FP32 with matrix products on TF32 tensor cores, where the GPU has them);
    - the GPU: ``fp32_flops``, ``conv_flops``, ``amp_flops``, ``bandwidth_bps``, ``tdp_w``,
      ``idle_w`` (not read: idle is the fitted share ``idle_share`` of the TDP for every GPU).
    """
    p = params
    train = x["train"].astype(float)
    passes = np.where(train > 0, TRAIN_PASSES, 1.0)
    batch = np.maximum(x["batch_size"].astype(float), 1.0)
    # Mixed precision runs the matrix kinds against the GPU's FP16 peak, of which it reaches a
    # share of its own (casts, FP32 accumulation, kernels not on tensor cores: ``eff_amp``),
    # never slower than the same work in FP32; it halves the activations. Element-wise work and
    # the optimiser's FP32 master weights stay as they are.
    amp = x["amp"] > 0
    amp_peak = p["eff_amp"] * x["amp_flops"]
    # TF32 matrix products (asked for, or PyTorch 1.7-1.11's default) take the peak cuDNN's
    # FP32 work runs at (TF32 from Ampere on, else FP32).
    dense_fp32 = np.where(x["tf32"] > 0, x["conv_flops"], x["fp32_flops"])
    peaks = {
        "conv": np.where(amp, np.maximum(amp_peak, x["conv_flops"]), x["conv_flops"]),
        "dense": np.where(amp, np.maximum(amp_peak, x["fp32_flops"]), dense_fp32),
        "other": x["fp32_flops"],
    }
    # cuDNN's FP32 recurrences take the convolutions' peak (TF32 from Ampere on) under
    # ``rec_tf32`` = 1; a legacy model (1e-3) keeps them at the FP32 peak.
    rec_fp32 = np.maximum(x["fp32_flops"], p["rec_tf32"] * x["conv_flops"])
    peaks["recurrent"] = np.where(amp, np.maximum(amp_peak, rec_fp32), rec_fp32)
    activation_bytes = np.where(amp, 0.5, 1.0) * x["activation_bytes"]
    # A kernel fills the GPU only with enough independent elements: at a small batch a layer's
    # output (and a recurrence's step, run one after another) leaves most of the SMs idle.
    per_node = batch * x["activation_bytes"] / (4.0 * np.maximum(x["node_count"], 1.0))
    fill = _filled(per_node / (p["fill"] * x["threads"]))
    rec_width = np.sqrt(
        np.maximum(x["flops_recurrent"] / np.maximum(x["recurrent_steps"], 1.0), 1.0) / 2.0
    )
    fill_rec = _filled(batch * rec_width / (p["fill_rec"] * x["threads"]))
    fills = {"conv": fill, "dense": fill, "recurrent": fill_rec, "other": fill}
    compute = sum(
        passes * batch * x[f"flops_{k}"] / (peaks[k] * p[f"eff_{k}"] * fills[k]) for k in KINDS
    )
    weight_passes = np.where(train > 0, p["weight_passes"], TEST_WEIGHT_PASSES)
    memory = (
        passes * batch * activation_bytes / (x["bandwidth_bps"] * p["eff_mem"] * fill)
        + weight_passes * x["weight_bytes"] / x["bandwidth_bps"]
    )
    floor = passes * (x["node_count"] * p["kernel_s"] + x["recurrent_steps"] * p["rec_s"])
    # A test step runs the loop's forward third (no backward, no optimiser step); the data
    # pipeline's cost per sample is the same in both phases.
    host = p["step_s"] * passes / TRAIN_PASSES + batch * (
        p["sample_s"] + x["input_bytes"] * p["input_s_per_byte"]
    )

    tdp = x["tdp_w"].astype(float)
    idle = p["idle_share"] * tdp
    limit = np.where(np.isfinite(x["power_limit_w"]), x["power_limit_w"], tdp)
    limit = np.maximum(limit, idle * 1.05)
    order_w = p["roofline_order"]
    work = (compute**order_w + memory**order_w) ** (1.0 / order_w)
    intensity = np.minimum(
        1.0, (p["busy_compute"] * compute + p["busy_memory"] * memory) / np.maximum(work, 1e-30)
    )
    busy_power = idle + (tdp - idle) * intensity * work / np.maximum(work + floor, 1e-30)
    # A limit under the busy power holds the board at the limit and slows the compute.
    stretch = np.where(
        busy_power > limit,
        ((busy_power - idle) / np.maximum(limit - idle, 1e-9)) ** p["limit_exponent"],
        1.0,
    )
    busy_power = np.minimum(busy_power, limit)
    t_gpu = ((compute * stretch) ** order_w + memory**order_w) ** (1.0 / order_w) + floor
    order = p["overlap"]
    t_step = (t_gpu**order + host**order) ** (1.0 / order)
    busy = t_gpu / t_step
    power = idle + (busy_power - idle) * busy
    steps = np.ceil(x["samples"] / batch) * np.maximum(x["epochs"], 1.0)
    duration = steps * t_step
    flops_total = (
        passes * x["samples"] * np.maximum(x["epochs"], 1.0) * sum(x[f"flops_{k}"] for k in KINDS)
    )
    return Prediction(
        duration_s=duration,
        power_w=power,
        energy_j=power * duration,
        busy=busy,
        flop_rate=flops_total / duration,
    )


def _filled(ratio: np.ndarray) -> np.ndarray:
    """The share of the GPU a kernel keeps busy: ratio / (1 + ratio), ratio = its parallel
    elements over the GPU's resident threads (scaled by a fitted factor)."""
    return ratio / (1.0 + ratio)


def clip_params(params: Mapping[str, float]) -> dict[str, float]:
    """Parameters inside their boxes (a stored model read back is checked, never trusted); a
    parameter added since the model was stored reads as its :data:`LEGACY_DEFAULTS` value."""
    out: dict[str, float] = {}
    for name, (_, low, high) in PARAMS.items():
        value = float(params[name] if name in params else LEGACY_DEFAULTS[name])
        if not math.isfinite(value):
            raise ValueError(f"transfer parameter {name} is not finite")
        out[name] = min(max(value, low), high)
    return out


def stored_params(params: Mapping[str, float]) -> dict[str, float]:
    """The parameters as a model file stores them: every one, but a parameter of
    :data:`LEGACY_DEFAULTS` at its legacy value is left out (the file then reads, and hashes,
    as one written before the parameter existed)."""
    return {
        k: float(params[k])
        for k in PARAMS
        if not (k in LEGACY_DEFAULTS and float(params[k]) == LEGACY_DEFAULTS[k])
    }
