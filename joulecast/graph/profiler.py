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
from math import prod

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
MAX_WARNINGS = 50
MAX_WARNING_CHARS = 500

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


def _bounded(warnings: list[str]) -> tuple[str, ...]:
    """At most MAX_WARNINGS warnings of at most MAX_WARNING_CHARS each, then a summary: the
    profile is cached and sent, so its size must not grow with the graph."""
    out = [
        w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 3] + "..." for w in warnings
    ]
    if len(out) > MAX_WARNINGS:
        extra = len(out) - (MAX_WARNINGS - 1)
        out = [*out[: MAX_WARNINGS - 1], f"... and {extra} more warning(s)"]
    return tuple(out)


def _profile(graph: Graph, model: object, limits: GraphLimits) -> GraphProfile:
    table = infer(graph, model, limits)
    nodes = graph.nodes
    warnings: list[str] = list(table.warnings)
    # One pass in topological order: each value's status (dynamic / param / const), the
    # producer of each value, the views of weights, FLOPs, params and the dependency chain.
    status: dict[str, str] = dict.fromkeys(table.inputs, DYNAMIC)
    for name in table.initializers:
        status[name] = PARAM if table.elem_type(name) in FLOAT_TYPES else CONST
    producers: dict[str, Node] = {}
    depth_of: dict[str, int] = {}
    """Parametric layers on the longest path ending at each value."""
    depth = 0
    roots: dict[str, str] = {}

    flops_by_kind = dict.fromkeys(FLOP_KINDS, 0)
    kinds: list[str] = []
    weights_seen: dict[str, int] = {}
    activation_bytes = 0
    bytes_by_kind = dict.fromkeys(FLOP_KINDS, 0)
    tensor_sizes: Counter[int] = Counter()
    recurrent_steps = 0
    attention: str | None = None
    control_flow: str | None = None
    unknown_ops: Counter[str] = Counter()
    unknown_shapes: Counter[str] = Counter()
    shapes = table.shapes
    types = table.types
    rule_of = rules.RULES
    control_ops = rules.CONTROL_FLOW_OPS
    zero_ops = rules.ZERO_OPS
    recurrent_ops = rules.RECURRENT_OPS
    attention_ops = rules.ATTENTION_OPS
    get_status = status.get
    element_bytes = BYTES_PER_ELEMENT.get

    for node in nodes:
        op = node.op
        ins = node.inputs
        in_status = [get_status(n, DYNAMIC) for n in ins if n]
        if op in _SOURCE_OPS and DYNAMIC not in in_status:
            st = CONST
        elif DYNAMIC in in_status or (not in_status and op != "Constant"):
            st = DYNAMIC
        elif PARAM in in_status:
            st = PARAM
        else:
            st = CONST
        if op in _VIEW_OPS and ins and in_status and get_status(ins[0]) == PARAM:
            src = roots.get(ins[0], ins[0])
            for out in node.outputs:
                if out:
                    roots[out] = src

        kind = ""
        foreign = node.domain not in ("", "ai.onnx")
        rule = None if foreign else rule_of.get(op)
        if op == "Softmax" and rule is not None and rules.is_sdpa_softmax(node, producers):
            rule = _no_flops
        if rule is not None:
            result = rule(node, table)
            if result is None:
                unknown_shapes[op] += 1
            else:
                flops, kind = result
                flops_by_kind[kind] += flops
        elif op in control_ops and not foreign:
            control_flow = control_flow or node.label
            warnings.append(f"{node.label}: control flow; its subgraphs are not counted")
        elif foreign or op not in zero_ops:
            unknown_ops[f"{node.domain}::{op}" if foreign else op] += 1
        if not foreign:
            if op == "Mul":
                flops_by_kind["other"] += rules.silu_flops(node, table, producers)
            if op in recurrent_ops:
                kind = "recurrent"
                dims = rules.recurrent_dims(node, table)
                recurrent_steps += dims[0] if dims else 0
                for name, n in _recurrent_weight_sizes(node, table):
                    weights_seen.setdefault(name, n * bytes_per_element(table.elem_type(name)))
            elif op in attention_ops or (
                op in _MATMUL_OPS and len(ins) >= 2 and in_status[:2].count(DYNAMIC) == 2
            ):
                attention = attention or node.label
            if op in _WEIGHT_SLOTS:
                _count_weights(node, table, status, roots, weights_seen)
        kinds.append(kind)
        best = 0
        for n in ins:
            d = depth_of.get(n, 0)
            if d > best:
                best = d
        if kind in _PARAMETRIC:
            best += 1
        if best > depth:
            depth = best
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
                    activation_bytes += size
                    bytes_by_kind[kind or "other"] += size
                    tensor_sizes[size] += 1

    for op, n in sorted(unknown_ops.items()):
        warnings.append(f"op {op} has no FLOP rule; counted as 0 ({n} node(s))")
    for op, n in sorted(unknown_shapes.items()):
        warnings.append(f"{op}: shapes unknown, counted as 0 ({n} node(s))")
    if table.unknown_nodes:
        listed = ", ".join(table.unknown_nodes[:MAX_UNKNOWN_LISTED])
        more = len(table.unknown_nodes) - MAX_UNKNOWN_LISTED
        warnings.append(
            f"{len(table.unknown_nodes)} node(s) with unknown output shapes: {listed}"
            + (f" and {more} more" if more > 0 else "")
        )

    batch = table.batch
    if batch > 1:
        warnings.append(f"fixed batch {batch}: counts divided by {batch}")
    per_sample = {k: _per_sample(v, batch) for k, v in flops_by_kind.items()}
    forward = sum(per_sample.values())
    params = sum(_params_of(name, b, table) for name, b in weights_seen.items())
    weight_bytes = sum(weights_seen.values())
    weight_bytes_large = sum(b for b in weights_seen.values() if b >= LARGE_TENSOR_BYTES)
    activation_bytes = _per_sample(activation_bytes, batch)
    for what, value in (
        ("training FLOPs", TRAIN_FACTOR * forward),
        ("weight bytes", weight_bytes),
        ("activation bytes", activation_bytes),
    ):
        if value > limits.max_flops:
            raise GraphTooLarge(
                f"graph has {value:.3g} {what} per sample; the ceiling is "
                f"{limits.max_flops:.3g} (2^{limits.max_flops.bit_length() - 1})"
            )
    moved = weight_bytes + activation_bytes
    family, reason = classify(kinds, _Parents(nodes), attention, control_flow)
    return GraphProfile(
        family=family,
        family_reason=reason,
        params=params,
        flops_forward=forward,
        flops_train=TRAIN_FACTOR * forward,
        flops_by_kind=per_sample,
        weight_bytes=weight_bytes,
        weight_bytes_large=weight_bytes_large,
        activation_bytes=activation_bytes,
        activation_bytes_by_kind={k: _per_sample(v, batch) for k, v in bytes_by_kind.items()},
        activation_sizes=tuple(
            (_per_sample(size, batch), n)
            for size, n in sorted(tensor_sizes.items(), reverse=True)[:MAX_ACTIVATION_SIZES]
        ),
        arithmetic_intensity=forward / moved if moved else 0.0,
        recurrent_steps=recurrent_steps,
        depth=depth,
        node_count=len(nodes),
        warnings=_bounded(warnings),
        input_shape=_sample_shape(table),
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
