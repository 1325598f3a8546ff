"""Bytes -> validated ``onnx.ModelProto``: the one door through which untrusted graphs enter.

Nothing here touches the filesystem. Every limit is checked on the raw proto before any
shape inference runs, so a hostile graph is refused before onnx's C++ code sees it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import onnx

from joulecast.graph.errors import ExternalDataRefused, GraphError, GraphTooLarge

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


def parse_model(onnx_bytes: bytes, limits: GraphLimits) -> onnx.ModelProto:
    """Parse and validate ``onnx_bytes``; raise a typed error naming the first problem."""
    if not isinstance(onnx_bytes, bytes | bytearray | memoryview):
        raise GraphError(f"expected ONNX bytes, got {type(onnx_bytes).__name__}")
    size = len(onnx_bytes)
    if size == 0:
        raise GraphError("empty input: 0 bytes is not an ONNX model")
    if size > limits.max_bytes:
        raise GraphTooLarge(f"graph is {size} bytes; the limit is {limits.max_bytes} bytes")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(onnx_bytes if isinstance(onnx_bytes, bytes) else bytes(onnx_bytes))
    except Exception as exc:  # DecodeError, RecursionError, upb's own errors
        raise GraphError(f"not an ONNX model: protobuf decoding failed ({exc})") from exc
    if not model.opset_import:
        raise GraphError("not an ONNX model: it declares no opset")
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise GraphError("ONNX model has no graph nodes")
    validate(model, limits)
    return model


def _graphs(model: onnx.ModelProto, limits: GraphLimits) -> Iterator[tuple[onnx.GraphProto, int]]:
    """Every graph of ``model`` with its nesting depth (main graph 0), iteratively."""
    stack: list[tuple[onnx.GraphProto, int]] = [(model.graph, 0)]
    while stack:
        graph, depth = stack.pop()
        if depth > limits.max_nesting:
            raise GraphTooLarge(
                f"subgraph nesting depth {depth} (graph {graph.name!r}) exceeds the limit of "
                f"{limits.max_nesting}"
            )
        yield graph, depth
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    stack.append((attr.g, depth + 1))
                stack.extend((g, depth + 1) for g in attr.graphs)


def _check_dims(dims: Iterator[int], what: str, limits: GraphLimits) -> None:
    numel = 1
    for d in dims:
        if d < 0:
            raise GraphError(f"{what} declares a negative dimension {d}")
        if d > limits.max_dim:
            raise GraphTooLarge(f"{what} declares dimension {d}; the limit is {limits.max_dim}")
        numel *= d
    if numel > limits.max_elements:
        raise GraphTooLarge(
            f"{what} has {numel} elements; the limit is {limits.max_elements} per tensor"
        )


def _check_tensor(tensor: onnx.TensorProto, where: str, limits: GraphLimits) -> None:
    what = f"tensor {tensor.name!r} ({where})"
    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0:
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        raise ExternalDataRefused(
            f"{what} refers to external data (location {location!r}); external data is never "
            "read: upload a weightless graph (joulecast.weightless.strip_weights)"
        )
    _check_dims(iter(tensor.dims), what, limits)


def _check_sparse(sparse: onnx.SparseTensorProto, where: str, limits: GraphLimits) -> None:
    _check_tensor(sparse.values, where, limits)
    _check_tensor(sparse.indices, where, limits)
    _check_dims(iter(sparse.dims), f"sparse tensor {sparse.values.name!r} ({where})", limits)


def _check_value_info(vi: onnx.ValueInfoProto, where: str, limits: GraphLimits) -> None:
    ttype = vi.type
    # Unwrap sequence/optional element types; maps carry a value type.
    for _ in range(limits.max_nesting + 1):
        if ttype.HasField("sequence_type"):
            ttype = ttype.sequence_type.elem_type
        elif ttype.HasField("optional_type"):
            ttype = ttype.optional_type.elem_type
        elif ttype.HasField("map_type"):
            ttype = ttype.map_type.value_type
        else:
            break
    if ttype.HasField("tensor_type") and ttype.tensor_type.HasField("shape"):
        dims = (d.dim_value for d in ttype.tensor_type.shape.dim if d.HasField("dim_value"))
        _check_dims(dims, f"value {vi.name!r} ({where})", limits)


def _check_node(node: onnx.NodeProto, where: str, limits: GraphLimits) -> None:
    for attr in node.attribute:
        at = f"attribute {attr.name!r} of node {node.name or node.op_type!r} in {where}"
        if attr.HasField("t"):
            _check_tensor(attr.t, at, limits)
        for t in attr.tensors:
            _check_tensor(t, at, limits)
        if attr.HasField("sparse_tensor"):
            _check_sparse(attr.sparse_tensor, at, limits)
        for s in attr.sparse_tensors:
            _check_sparse(s, at, limits)


def validate(model: onnx.ModelProto, limits: GraphLimits) -> None:
    """Check node count, nesting, external references and every declared dimension."""
    nodes = 0
    for graph, _depth in _graphs(model, limits):
        where = f"graph {graph.name!r}"
        nodes += len(graph.node)
        if nodes > limits.max_nodes:
            raise GraphTooLarge(f"graph has more than {limits.max_nodes} nodes")
        for t in graph.initializer:
            _check_tensor(t, f"initializer of {where}", limits)
        for s in graph.sparse_initializer:
            _check_sparse(s, f"sparse initializer of {where}", limits)
        for vi in (*graph.input, *graph.output, *graph.value_info):
            _check_value_info(vi, where, limits)
        for node in graph.node:
            _check_node(node, where, limits)
    for function in model.functions:
        nodes += len(function.node)
        if nodes > limits.max_nodes:
            raise GraphTooLarge(f"graph has more than {limits.max_nodes} nodes")
        for node in function.node:
            _check_node(node, f"function {function.name!r}", limits)
