"""The ``GraphProfile`` record: what the profiler derives from one ONNX graph."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FAMILIES = ("mlp", "cnn", "rnn", "crnn", "other")
FLOP_KINDS = ("conv", "dense", "recurrent", "other")


@dataclass(frozen=True)
class GraphProfile:
    """Per-sample cost of one forward pass, in DeepSpeed's flops-profiler convention.

    ``flops_forward`` counts floating-point operations for one sample; ``flops_train`` is
    3 x forward (backward ~ 2 x forward). Bytes are float32-equivalent sizes as declared by the
    graph's element types.
    """

    family: str
    family_reason: str
    params: int
    flops_forward: int
    flops_train: int
    flops_by_kind: Mapping[str, int]
    weight_bytes: int
    activation_bytes: int
    arithmetic_intensity: float
    recurrent_steps: int
    depth: int
    node_count: int
    warnings: tuple[str, ...] = field(default=())
