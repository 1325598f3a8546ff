"""ONNX bytes -> one :class:`NodeRecord` per node: the per-node view of the same profiler.

A layer-wise energy model (``estimator.layerwise``) predicts each node of a graph and sums. It
needs what :func:`~joulecast.graph.profile_graph` computes per node and then adds up: the node's
FLOPs (same rules), the bytes it reads and writes, its weights, and its kernel and stride. This
module runs the same parse, shape inference and FLOP rules, so fit and serve see one featurizer;
it is a separate function so that ``profile_graph`` keeps its output and its speed.

Counts are per sample, as in :class:`~joulecast.graph.GraphProfile`: a dynamic batch is set to
1, a fixed batch N divides FLOPs and activation bytes by N (weights are not per sample).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from joulecast.errors import JoulecastError
from joulecast.graph import rules
from joulecast.graph.errors import GraphError
from joulecast.graph.ir import Graph, Node, read_graph
from joulecast.graph.parse import GraphLimits, parse_model
from joulecast.graph.shapes import FLOAT_TYPES, ShapeTable, bytes_per_element, infer, numel


@dataclass(frozen=True)
class NodeRecord:
    """One node of a graph: per-sample FLOPs and activation bytes, weight bytes, geometry.

    ``flops`` follows the profiler's rules (0 for ops it counts as free, and for ops with no
    rule, where ``counted`` is False). ``input_bytes``/``output_bytes`` are the activations the
    node reads and writes per sample; ``weight_bytes`` the initializers it reads (whole, not per
    sample). ``kernel``/``stride`` are the first spatial kernel and stride (0 when none).
    """

    index: int
    op_type: str
    name: str
    flops: int
    kind: str
    input_bytes: int
    output_bytes: int
    weight_bytes: int
    kernel: int
    stride: int
    counted: bool
    input_shape: tuple[int, ...] = ()
    """Shape of the node's first activation input (batch axis as in the graph; () if unknown)."""
    output_shape: tuple[int, ...] = ()
    """Shape of the node's first output (() if unknown)."""

    @property
    def bytes_moved(self) -> int:
        """Activation bytes read and written per sample (weights excluded)."""
        return self.input_bytes + self.output_bytes


def profile_nodes(onnx_bytes: bytes, limits: GraphLimits | None = None) -> tuple[NodeRecord, ...]:
    """Per-node records of one ONNX graph given as bytes (full or weightless).

    Raises the profiler's errors (:class:`~joulecast.graph.errors.GraphError` and subclasses)
    on the same inputs as :func:`~joulecast.graph.profile_graph`.
    """
    limits = limits or GraphLimits()
    model = parse_model(onnx_bytes, limits)
    try:
        return _nodes(read_graph(model, limits), model, limits)
    except JoulecastError:
        raise
    except Exception as exc:  # a malformed graph that passed validation
        raise GraphError(f"malformed ONNX graph: {type(exc).__name__}: {exc}") from exc


def _bytes(name: str, table: ShapeTable) -> int:
    shape = table.shape(name)
    return 0 if shape is None else numel(shape) * bytes_per_element(table.elem_type(name))


def _first(values: object) -> int:
    seq = list(values) if isinstance(values, list | tuple) else []
    return int(seq[0]) if seq else 0


def _nodes(graph: Graph, model: onnx.ModelProto, limits: GraphLimits) -> tuple[NodeRecord, ...]:
    table = infer(graph, model, limits)
    batch = max(table.batch, 1)
    weights = {n for n in table.initializers if table.elem_type(n) in FLOAT_TYPES}
    producers: dict[str, Node] = {}
    out: list[NodeRecord] = []
    for index, node in enumerate(graph.nodes):
        foreign = node.domain not in ("", "ai.onnx")
        rule = None if foreign else rules.RULES.get(node.op)
        if node.op == "Softmax" and rule is not None and rules.is_sdpa_softmax(node, producers):
            rule = None  # DeepSpeed counts sdpa as its two matmuls only (as profile_graph)
            result: tuple[int, str] | None = (0, "other")
        else:
            result = rule(node, table) if rule is not None else None
        flops, kind = result if result is not None else (0, "")
        if not foreign and node.op == "Mul":
            silu = rules.silu_flops(node, table, producers)
            if silu:
                flops, kind = flops + silu, kind or "other"
        counted = result is not None or (not foreign and node.op in rules.ZERO_OPS)
        ins = [n for n in node.inputs if n]
        weight_bytes = sum(_bytes(n, table) for n in ins if n in weights)
        input_bytes = sum(_bytes(n, table) for n in ins if n not in table.initializers)
        output_bytes = sum(_bytes(n, table) for n in node.outputs if n)
        kernel = _first(node.attrs.get("kernel_shape"))
        stride = _first(node.attrs.get("strides"))
        if node.op == "Conv" and not kernel and len(ins) > 1:
            shape = table.shape(ins[1])
            kernel = int(shape[2]) if shape is not None and len(shape) > 2 else 0
        if kernel and not stride:
            stride = 1
        activations = [n for n in ins if n not in table.initializers]
        in_shape = table.shape(activations[0]) if activations else None
        out_shape = table.shape(node.outputs[0]) if node.outputs else None
        out.append(
            NodeRecord(
                index=index,
                op_type=f"{node.domain}::{node.op}" if foreign else node.op,
                name=node.name,
                flops=_per_sample(flops, batch),
                kind=kind,
                input_bytes=_per_sample(input_bytes, batch),
                output_bytes=_per_sample(output_bytes, batch),
                weight_bytes=weight_bytes,
                kernel=kernel,
                stride=stride,
                counted=counted,
                input_shape=tuple(in_shape or ()),
                output_shape=tuple(out_shape or ()),
            )
        )
        for name in node.outputs:
            producers[name] = node
    return tuple(out)


def _per_sample(value: int, batch: int) -> int:
    return value if batch <= 1 else (value + batch // 2) // batch
