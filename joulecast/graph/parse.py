"""Bytes -> validated ``onnx.ModelProto``: the one door through which untrusted graphs enter.

Nothing here touches the filesystem. Every limit is checked on the raw proto before any
shape inference runs, so a hostile graph is refused before onnx's C++ code sees it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import onnx

from joulecast.graph.errors import GraphError, GraphTooLarge
from joulecast.graph.wire import strip_data

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GraphLimits:
    """Upper bounds on an uploaded graph.

    ``max_bytes``: serialised size; ``max_nodes``: nodes in all graphs and functions together;
    ``max_nesting``: subgraph depth (an ``If`` inside a ``Loop`` body is 2); ``max_dim``: any
    declared or inferred dimension; ``max_elements``: elements of any one tensor.
    """

    max_bytes: int = 256 * 1024 * 1024
    max_nodes: int = 50_000
    max_nesting: int = 8
    max_dim: int = 2**31 - 1
    max_elements: int = 2**40
    max_flops: int = 2**53
    """Ceiling on training FLOPs (3 x forward) and on weight and activation bytes per sample:
    above it a graph is refused, so every count stays exact in a double and within int64."""


def parse_model(onnx_bytes: bytes, limits: GraphLimits) -> onnx.ModelProto:
    """Parse ``onnx_bytes`` (limits on the graph itself: :func:`joulecast.graph.ir.read_graph`)."""
    if not isinstance(onnx_bytes, bytes | bytearray | memoryview):
        raise GraphError(f"expected ONNX bytes, got {type(onnx_bytes).__name__}")
    size = len(onnx_bytes)
    if size == 0:
        raise GraphError("empty input: 0 bytes is not an ONNX model")
    if size > limits.max_bytes:
        raise GraphTooLarge(f"graph is {size} bytes; the limit is {limits.max_bytes} bytes")
    raw = onnx_bytes if isinstance(onnx_bytes, bytes) else bytes(onnx_bytes)
    raw = strip_data(raw) or raw  # the weights are never parsed
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # DecodeError, RecursionError, upb's own errors
        raise GraphError(f"not an ONNX model: protobuf decoding failed ({exc})") from exc
    if not model.opset_import:
        raise GraphError("not an ONNX model: it declares no opset")
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise GraphError("ONNX model has no graph nodes")
    return model
