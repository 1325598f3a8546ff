"""FLOPs and parameters with DeepSpeed's flops profiler, the paper's tool."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass

from torch import nn

from collector.models import INPUT_SHAPE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cost:
    """Per-sample forward FLOPs (DeepSpeed's count), training FLOPs = 3 x forward, params."""

    flops_forward: int
    flops_train: int
    params: int


def deepspeed_cost(model: nn.Module) -> Cost:
    """Count one forward pass of one (1, 1, 128, 64) sample on the model's current device.

    DeepSpeed reports FLOPs for GRUs but almost no MACs, so FLOPs are used throughout (docs/PAPER.md).
    """
    logging.getLogger("DeepSpeed").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        from deepspeed.profiling.flops_profiler import get_model_profile

        flops, _macs, params = get_model_profile(
            model,
            input_shape=(1, *INPUT_SHAPE),
            print_profile=False,
            detailed=False,
            warm_up=0,
            as_string=False,
        )
    return Cost(int(flops), 3 * int(flops), int(params))
