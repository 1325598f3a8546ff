"""FLOPs and parameters: DeepSpeed's flops profiler (the paper's tool) when it is installed,
else the project's own ONNX profiler on the model's weightless graph (it follows DeepSpeed's
convention and matches it exactly on the paper's configurations; tests/collector checks it).
The device machine has no DeepSpeed, so ``joulecast collect`` must work without it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
from dataclasses import dataclass

import torch
from torch import nn

from collector.models import INPUT_SHAPE
from joulecast.weightless import export_weightless

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cost:
    """Per-sample forward FLOPs (DeepSpeed's count), training FLOPs = 3 x forward, params."""

    flops_forward: int
    flops_train: int
    params: int


def deepspeed_cost(model: nn.Module, input_shape: tuple[int, ...] = (1, *INPUT_SHAPE)) -> Cost:
    """Count one forward pass of ``input_shape`` (one (1, 1, 128, 64) sample by default) on the
    model's current device.

    DeepSpeed reports FLOPs for GRUs but almost no MACs, so FLOPs are used throughout (docs/PAPER.md).
    """
    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        # DeepSpeed is optional (model_cost asks deepspeed_available first) and prints on import
        from deepspeed.profiling.flops_profiler import get_model_profile

        flops, _macs, params = get_model_profile(
            model,
            input_shape=input_shape,
            print_profile=False,
            detailed=False,
            warm_up=0,
            as_string=False,
        )
    return Cost(int(flops), 3 * int(flops), int(params))


def deepspeed_available() -> bool:
    """True when DeepSpeed can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("deepspeed") is not None
    except (ImportError, ValueError):
        return False


def graph_cost(onnx_bytes: bytes) -> Cost:
    """Count one forward pass per sample from a (weightless) ONNX graph, DeepSpeed's way."""
    from joulecast.graph import profile_graph

    profile = profile_graph(onnx_bytes)
    return Cost(profile.flops_forward, profile.flops_train, profile.params)


def model_cost(model: nn.Module, onnx_bytes: bytes | None = None) -> Cost:
    """DeepSpeed's count when DeepSpeed is installed, else the graph profiler's on ``onnx_bytes``."""
    if deepspeed_available():
        return deepspeed_cost(model)
    if onnx_bytes is None:
        onnx_bytes = export_weightless(model, torch.zeros(1, *INPUT_SHAPE))
    log.debug("DeepSpeed is not installed: FLOPs from the graph profiler")
    return graph_cost(onnx_bytes)
