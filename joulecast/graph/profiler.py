"""ONNX bytes -> :class:`GraphProfile`: the one featurizer used at fit time and at serving time.

Steps: parse and validate (``parse``), make weightless and infer shapes (``shapes``), count
FLOPs per node (``rules``), count parameters per weight slot, classify (``family``).
"""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import prod

from joulecast.bounded import bounded_warnings
from joulecast.errors import JoulecastError
from joulecast.graph import rules
from joulecast.graph.errors import GraphError, GraphTooLarge
from joulecast.graph.family import classify, node_parents
from joulecast.graph.ir import Graph, Node, read_graph
from joulecast.graph.parse import GraphLimits, parse_model
from joulecast.graph.record import FLOP_KINDS, LARGE_TENSOR_BYTES, GraphProfile
from joulecast.graph.shapes import (
    BYTES_PER_ELEMENT,
    FLOAT_TYPES,
    MAX_UNKNOWN_LISTED,
    ShapeTable,
    bytes_per_element,
    infer,
    numel,
)

logger = logging.getLogger(__name__)

TRAIN_FACTOR = 3
"""Training FLOPs = 3 x forward (backward ~ 2 x forward), as in the paper."""
MAX_ACTIVATION_SIZES = 64
"""Distinct activation tensor sizes a profile keeps (the largest): smaller ones only reach
:data:`~joulecast.graph.record.LARGE_TENSOR_BYTES` at batch sizes nobody trains with."""

# Inputs of each op that hold trainable weights when they derive from initializers.
_WEIGHT_SLOTS: dict[str, tuple[int, ...]] = {
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
    "Gemm": (0, 1, 2),
    "MatMul": (0, 1),
    "BatchNormalization": (1, 2),  # scale and bias; running mean/var are buffers
    "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "GroupNormalization": (1, 2),
    "PRelu": (1,),
    "Gather": (0,),  # embedding tables
    "Add": (0, 1),  # biases of MatMul-based linears, affine of decomposed norms
    "Sub": (0, 1),
    "Mul": (0, 1),
}
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul"})

DYNAMIC, PARAM, CONST = "dynamic", "param", "const"
_SOURCE_OPS = frozenset({"Constant", "ConstantOfShape"})
_PARAMETRIC = frozenset({"conv", "dense", "recurrent"})
_MATMUL_OPS = frozenset({"MatMul", "Gemm", "Einsum"})

# Ops that only re-lay a tensor out: a weight seen through them is still the same weight
# (the dynamo exporter transposes an RNN's weights once per unrolled step).
_VIEW_OPS = frozenset(
    {"Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"}
)


def _recurrent_weight_sizes(node: Node, table: ShapeTable) -> list[tuple[str, int]]:
    """(value, elements) of W, R, B; from their shapes, else from the node's attributes."""
    dims = rules.recurrent_dims(node, table)
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[node.op]
    directions = rules.recurrent_directions(node)
    out: list[tuple[str, int]] = []
    for slot in (1, 2, 3):
        name = node.inputs[slot] if len(node.inputs) > slot else ""
        if not name:
            continue
        shape = table.shape(name)
        if shape is not None:
            out.append((name, numel(shape)))
        elif dims is not None:
            _, _, size_in, hidden = dims
            per = {1: gates * hidden * size_in, 2: gates * hidden * hidden, 3: 2 * gates * hidden}
            out.append((name, directions * per[slot]))
    return out


def profile_graph(onnx_bytes: bytes, limits: GraphLimits | None = None) -> GraphProfile:
    """Profile one ONNX graph given as bytes (full or weightless; never reads a file).

    FLOPs follow DeepSpeed's flops profiler (RULES.md) and are per sample: a dynamic batch is
    set to 1, a fixed batch N divides FLOPs and activation bytes by N. Raises
    :class:`~joulecast.graph.errors.GraphError` (malformed input),
    :class:`~joulecast.graph.errors.ExternalDataRefused` or
    :class:`~joulecast.graph.errors.GraphTooLarge` (a limit of ``limits``, including FLOP and
    byte counts above ``limits.max_flops``). The work done is bounded by ``limits`` whatever
    the graph: node counts are taken after local-function expansion, before any inference.
    """
    limits = limits or GraphLimits()
    with _collector_paused():
        model = parse_model(onnx_bytes, limits)
        try:
            graph = read_graph(model, limits)
            return _profile(graph, model, limits)
        except JoulecastError:
            raise
        except RecursionError as exc:
            raise GraphTooLarge("graph is nested too deeply to profile") from exc
        except Exception as exc:  # a malformed graph that passed validation (e.g. bad UTF-8)
            logger.debug("profiling failed on a malformed graph", exc_info=True)
            raise GraphError(f"malformed ONNX graph: {type(exc).__name__}: {exc}") from exc


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a graph is profiled, as ``timeit`` does.

    A profile allocates a handful of small objects per node (about 100k at 10k nodes) and
    frees them all when it returns, none in a cycle; the collector's passes over them cost
    about a quarter of the profiling time (benchmarks/bench_profiler.py) and reclaim nothing.
    The memory used is bounded by the graph limits; anything cyclic is collected on the
    next pass after the collector is back on. Only a collector this call turned off is turned
    back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Walk:
    """What one pass over the nodes in topological order counted, for the whole batch."""

    flops_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLOP_KINDS, 0))
    bytes_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FLOP_KINDS, 0))
    """Activation bytes written, by the FLOP kind of the node that wrote them."""
    kinds: list[str] = field(default_factory=list)
    """Each node's FLOP kind ("" when it does none), in node order: what the family reads."""
    weights_seen: dict[str, int] = field(default_factory=dict)
    """Bytes of each weight, by the name of the initializer it is a view of."""
    activation_bytes: int = 0
    tensor_sizes: Counter[int] = field(default_factory=Counter)
    recurrent_steps: int = 0
    attention: str | None = None
    """The first node that makes the graph a transformer."""
    control_flow: str | None = None
    unknown_ops: Counter[str] = field(default_factory=Counter)
    unknown_shapes: Counter[str] = field(default_factory=Counter)
    depth: int = 0
    """Parametric layers on the longest path."""
    warnings: list[str] = field(default_factory=list)


def _profile(graph: Graph, model: object, limits: GraphLimits) -> GraphProfile:
    table = infer(graph, model, limits)
    walk = _walk(graph.nodes, table)
    warnings = [*table.warnings, *walk.warnings, *_unknown_warnings(walk, table)]
    batch = table.batch
    if batch > 1:
        warnings.append(f"fixed batch {batch}: counts divided by {batch}")
    per_sample = {k: _per_sample(v, batch) for k, v in walk.flops_by_kind.items()}
    forward = sum(per_sample.values())
    weights = walk.weights_seen
    params = sum(_params_of(name, b, table) for name, b in weights.items())
    weight_bytes = sum(weights.values())
    activation_bytes = _per_sample(walk.activation_bytes, batch)
    _check_ceiling(limits, TRAIN_FACTOR * forward, weight_bytes, activation_bytes)
    moved = weight_bytes + activation_bytes
    family, reason = classify(walk.kinds, _Parents(graph.nodes), walk.attention, walk.control_flow)
    return GraphProfile(
        family=family,
        family_reason=reason,
        params=params,
        flops_forward=forward,
        flops_train=TRAIN_FACTOR * forward,
        flops_by_kind=per_sample,
        weight_bytes=weight_bytes,
        weight_bytes_large=sum(b for b in weights.values() if b >= LARGE_TENSOR_BYTES),
        activation_bytes=activation_bytes,
        activation_bytes_by_kind={k: _per_sample(v, batch) for k, v in walk.bytes_by_kind.items()},
        activation_sizes=tuple(
            (_per_sample(size, batch), n)
            for size, n in sorted(walk.tensor_sizes.items(), reverse=True)[:MAX_ACTIVATION_SIZES]
        ),
        arithmetic_intensity=forward / moved if moved else 0.0,
        recurrent_steps=walk.recurrent_steps,
        depth=walk.depth,
        node_count=len(graph.nodes),
        warnings=bounded_warnings(warnings),
        input_shape=_sample_shape(table),
    )


def _status(op: str, in_status: list[str]) -> str:
    """Whether a node's outputs are dynamic (they depend on the input), parameters (computed
    from weights alone: a view of a weight) or constants."""
    if op in _SOURCE_OPS and DYNAMIC not in in_status:
        return CONST
    if DYNAMIC in in_status or (not in_status and op != "Constant"):
        return DYNAMIC
    if PARAM in in_status:
        return PARAM
    return CONST


def _walk(nodes: list[Node], table: ShapeTable) -> _Walk:
    """One pass in topological order: each value's status (dynamic / param / const), the
    producer of each value, the views of weights, FLOPs, params and the dependency chain."""
    walk = _Walk()
    status: dict[str, str] = dict.fromkeys(table.inputs, DYNAMIC)
    for name in table.initializers:
        status[name] = PARAM if table.elem_type(name) in FLOAT_TYPES else CONST
    producers: dict[str, Node] = {}
    depth_of: dict[str, int] = {}
    """Parametric layers on the longest path ending at each value."""
    roots: dict[str, str] = {}
    shapes = table.shapes
    types = table.types
    get_status = status.get
    element_bytes = BYTES_PER_ELEMENT.get
    for node in nodes:
        ins = node.inputs
        in_status = [get_status(n, DYNAMIC) for n in ins if n]
        st = _status(node.op, in_status)
        if node.op in _VIEW_OPS and ins and in_status and get_status(ins[0]) == PARAM:
            src = roots.get(ins[0], ins[0])
            for out in node.outputs:
                if out:
                    roots[out] = src
        kind = _count(node, table, in_status, status, producers, roots, walk)
        walk.kinds.append(kind)
        best = 0
        for n in ins:
            d = depth_of.get(n, 0)
            if d > best:
                best = d
        if kind in _PARAMETRIC:
            best += 1
        if best > walk.depth:
            walk.depth = best
        for out in node.outputs:
            if not out:
                continue
            status[out] = st
            producers[out] = node
            depth_of[out] = best
            if st == DYNAMIC:
                shape = shapes.get(out)
                if shape is not None:
                    size = prod(shape) * element_bytes(types.get(out, 1), 4)
                    walk.activation_bytes += size
                    walk.bytes_by_kind[kind or "other"] += size
                    walk.tensor_sizes[size] += 1
    return walk


def _count(
    node: Node,
    table: ShapeTable,
    in_status: list[str],
    status: dict[str, str],
    producers: dict[str, Node],
    roots: dict[str, str],
    walk: _Walk,
) -> str:
    """Add one node's FLOPs, recurrent steps and weights to ``walk``; its FLOP kind."""
    op = node.op
    kind = ""
    foreign = node.domain not in ("", "ai.onnx")
    rule = None if foreign else rules.RULES.get(op)
    if op == "Softmax" and rule is not None and rules.is_sdpa_softmax(node, producers):
        rule = _no_flops
    if rule is not None:
        result = rule(node, table)
        if result is None:
            walk.unknown_shapes[op] += 1
        else:
            flops, kind = result
            walk.flops_by_kind[kind] += flops
    elif op in rules.CONTROL_FLOW_OPS and not foreign:
        walk.control_flow = walk.control_flow or node.label
        walk.warnings.append(f"{node.label}: control flow; its subgraphs are not counted")
    elif foreign or op not in rules.ZERO_OPS:
        walk.unknown_ops[f"{node.domain}::{op}" if foreign else op] += 1
    if foreign:
        return kind
    if op == "Mul":
        walk.flops_by_kind["other"] += rules.silu_flops(node, table, producers)
    ins = node.inputs
    if op in rules.RECURRENT_OPS:
        kind = "recurrent"
        dims = rules.recurrent_dims(node, table)
        walk.recurrent_steps += dims[0] if dims else 0
        for name, n in _recurrent_weight_sizes(node, table):
            walk.weights_seen.setdefault(name, n * bytes_per_element(table.elem_type(name)))
    elif op in rules.ATTENTION_OPS or (
        op in _MATMUL_OPS and len(ins) >= 2 and in_status[:2].count(DYNAMIC) == 2
    ):
        walk.attention = walk.attention or node.label
    if op in _WEIGHT_SLOTS:
        _count_weights(node, table, status, roots, walk.weights_seen)
    return kind


def _unknown_warnings(walk: _Walk, table: ShapeTable) -> list[str]:
    """What was counted as 0 for want of a FLOP rule or of shapes."""
    warnings = [
        f"op {op} has no FLOP rule; counted as 0 ({n} node(s))"
        for op, n in sorted(walk.unknown_ops.items())
    ]
    warnings += [
        f"{op}: shapes unknown, counted as 0 ({n} node(s))"
        for op, n in sorted(walk.unknown_shapes.items())
    ]
    if table.unknown_nodes:
        listed = ", ".join(table.unknown_nodes[:MAX_UNKNOWN_LISTED])
        more = len(table.unknown_nodes) - MAX_UNKNOWN_LISTED
        warnings.append(
            f"{len(table.unknown_nodes)} node(s) with unknown output shapes: {listed}"
            + (f" and {more} more" if more > 0 else "")
        )
    return warnings


def _check_ceiling(
    limits: GraphLimits, train_flops: int, weight_bytes: int, activation_bytes: int
) -> None:
    """Refuse a graph whose per-sample counts pass ``limits.max_flops`` (exact in a double)."""
    for what, value in (
        ("training FLOPs", train_flops),
        ("weight bytes", weight_bytes),
        ("activation bytes", activation_bytes),
    ):
        if value > limits.max_flops:
            raise GraphTooLarge(
                f"graph has {value:.3g} {what} per sample; the ceiling is "
                f"{limits.max_flops:.3g} (2^{limits.max_flops.bit_length() - 1})"
            )


class _Parents(Sequence[Sequence[int]]):
    """Each node's producers by index, built only if the classification asks for them."""

    def __init__(self, nodes: list[Node]) -> None:
        self._nodes = nodes
        self._parents: list[list[int]] | None = None

    def _build(self) -> list[list[int]]:
        if self._parents is None:
            self._parents = node_parents(
                [n.outputs for n in self._nodes], [n.inputs for n in self._nodes]
            )
        return self._parents

    def __getitem__(self, i):  # type: ignore[override]
        return self._build()[i]

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self):  # type: ignore[override]
        return iter(self._build())


def _no_flops(node: Node, table: ShapeTable) -> tuple[int, str]:
    return 0, "other"


def _sample_shape(table: ShapeTable) -> tuple[int, ...]:
    """One sample's shape of the first graph input (its batch axis dropped)."""
    shape = table.shape(table.inputs[0]) if table.inputs else None
    return tuple(shape[1:]) if shape else ()


def _per_sample(value: int, batch: int) -> int:
    return value if batch <= 1 else (value + batch // 2) // batch


def _params_of(name: str, nbytes: int, table: ShapeTable) -> int:
    return nbytes // bytes_per_element(table.elem_type(name))


def _count_weights(
    node: Node,
    table: ShapeTable,
    status: dict[str, str],
    roots: dict[str, str],
    seen: dict[str, int],
) -> None:
    op = node.op
    ins = node.inputs
    elementwise = op in _ELEMENTWISE
    # Elementwise ops and Gather hold a weight only when combined with an activation
    # (a bias, a scale, an embedding lookup).
    if (elementwise or op == "Gather") and not any(
        status.get(n, DYNAMIC) == DYNAMIC for n in ins if n
    ):
        return
    n_in = len(ins)
    for slot in _WEIGHT_SLOTS[op]:
        name = ins[slot] if n_in > slot else ""
        if not name or status.get(name) != PARAM:
            continue
        name = roots.get(name, name)
        if name in seen:
            continue
        shape = table.shapes.get(name)
        if shape is None or (elementwise and numel(shape) <= 1):
            continue  # a scalar factor (sdpa's scale), not a bias or an affine weight
        seen[name] = numel(shape) * bytes_per_element(table.elem_type(name))
