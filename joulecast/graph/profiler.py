"""ONNX bytes -> :class:`GraphProfile`: the one featurizer used at fit time and at serving time.

Steps: parse and validate (``parse``), make weightless and infer shapes (``shapes``), count
FLOPs per node (``rules``), count parameters per weight slot, classify (``family``).
"""

from __future__ import annotations

import logging
from collections import Counter

import onnx

from joulecast.errors import JoulecastError
from joulecast.graph import rules
from joulecast.graph.errors import GraphError
from joulecast.graph.family import classify, longest_chain, node_parents
from joulecast.graph.parse import GraphLimits, parse_model
from joulecast.graph.record import FLOP_KINDS, GraphProfile
from joulecast.graph.shapes import FLOAT_TYPES, ShapeTable, bytes_per_element, infer, numel

logger = logging.getLogger(__name__)

TRAIN_FACTOR = 3
"""Training FLOPs = 3 x forward (backward ~ 2 x forward), as in the paper."""

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

# Ops that only re-lay a tensor out: a weight seen through them is still the same weight
# (the dynamo exporter transposes an RNN's weights once per unrolled step).
_VIEW_OPS = frozenset(
    {"Transpose", "Reshape", "Identity", "Cast", "Squeeze", "Unsqueeze", "Flatten"}
)


def _weight_roots(graph: onnx.GraphProto, status: dict[str, str]) -> dict[str, str]:
    """For each parameter value that is a view of another, the value it is a view of."""
    roots: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in _VIEW_OPS and node.input and status.get(node.input[0]) == PARAM:
            src = node.input[0]
            for out in node.output:
                if out:
                    roots[out] = roots.get(src, src)
    return roots


def _status_of_values(graph: onnx.GraphProto, table: ShapeTable) -> dict[str, str]:
    """Whether each value depends on the input (dynamic), on initializers only (param), or on
    constants only (const). Float initializers are parameters; integer ones are constants."""
    status: dict[str, str] = {}
    for name in table.inputs:
        status[name] = DYNAMIC
    for name in table.initializers:
        status[name] = PARAM if table.elem_type(name) in FLOAT_TYPES else CONST
    for node in graph.node:
        ins = [status.get(n, DYNAMIC) for n in node.input if n]
        if node.op_type in ("Constant", "ConstantOfShape") and DYNAMIC not in ins:
            s = CONST
        elif DYNAMIC in ins or (not ins and node.op_type != "Constant"):
            s = DYNAMIC
        elif PARAM in ins:
            s = PARAM
        else:
            s = CONST
        for out in node.output:
            if out:
                status[out] = s
    return status


def _recurrent_weight_sizes(node: onnx.NodeProto, table: ShapeTable) -> list[tuple[str, int]]:
    """(value, elements) of W, R, B; from their shapes, else from the node's attributes."""
    dims = rules.recurrent_dims(node, table)
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[node.op_type]
    directions = rules.recurrent_directions(node)
    out: list[tuple[str, int]] = []
    for slot in (1, 2, 3):
        name = node.input[slot] if len(node.input) > slot else ""
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
    :class:`~joulecast.graph.errors.GraphTooLarge`.
    """
    limits = limits or GraphLimits()
    model = parse_model(onnx_bytes, limits)
    try:
        return _profile(model, limits)
    except JoulecastError:
        raise
    except Exception as exc:  # a malformed graph that passed validation (e.g. bad UTF-8)
        logger.debug("profiling failed on a malformed graph", exc_info=True)
        raise GraphError(f"malformed ONNX graph: {type(exc).__name__}: {exc}") from exc


def _profile(model: onnx.ModelProto, limits: GraphLimits) -> GraphProfile:
    table = infer(model, limits)
    graph = model.graph
    warnings: list[str] = list(table.warnings)
    status = _status_of_values(graph, table)
    producers = {out: node for node in graph.node for out in node.output if out}
    roots = _weight_roots(graph, status)

    flops_by_kind = dict.fromkeys(FLOP_KINDS, 0)
    kinds: list[str] = []
    weights_seen: dict[str, int] = {}
    activation_bytes = 0
    recurrent_steps = 0
    attention: str | None = None
    control_flow: str | None = None
    unknown_ops: Counter[str] = Counter()
    unknown_shapes: Counter[str] = Counter()

    for node in graph.node:
        op = node.op_type
        label = f"{op} {node.name!r}" if node.name else op
        kind = ""
        foreign = node.domain not in ("", "ai.onnx")
        rule = None if foreign else rules.RULES.get(op)
        if rule is not None:
            result = rule(node, table)
            if result is None:
                unknown_shapes[op] += 1
            else:
                flops, kind = result
                flops_by_kind[kind] += flops
        elif op in rules.CONTROL_FLOW_OPS and not foreign:
            control_flow = control_flow or label
            warnings.append(f"{label}: control flow; its subgraphs are not counted")
        elif foreign or op not in rules.ZERO_OPS:
            unknown_ops[f"{node.domain}::{op}" if foreign else op] += 1
        if op == "Mul" and not foreign:
            flops_by_kind["other"] += rules.silu_flops(node, table, producers)
        if op in rules.RECURRENT_OPS and not foreign:
            kind = "recurrent"
            dims = rules.recurrent_dims(node, table)
            recurrent_steps += dims[0] if dims else 0
            for name, n in _recurrent_weight_sizes(node, table):
                weights_seen.setdefault(name, n * bytes_per_element(table.elem_type(name)))
        elif op in rules.ATTENTION_OPS or (
            op in ("MatMul", "Gemm", "Einsum")
            and sum(status.get(n, DYNAMIC) == DYNAMIC for n in node.input[:2] if n) == 2
        ):
            attention = attention or label
        if not foreign:
            _count_weights(node, table, status, roots, weights_seen)
        kinds.append(kind)
        for out in node.output:
            if out and status.get(out) == DYNAMIC:
                shape = table.shape(out)
                if shape is not None:
                    activation_bytes += numel(shape) * bytes_per_element(table.elem_type(out))

    for op, n in sorted(unknown_ops.items()):
        warnings.append(f"op {op} has no FLOP rule; counted as 0 ({n} node(s))")
    for op, n in sorted(unknown_shapes.items()):
        warnings.append(f"{op}: shapes unknown, counted as 0 ({n} node(s))")

    batch = table.batch
    if batch > 1:
        warnings.append(f"fixed batch {batch}: counts divided by {batch}")
    per_sample = {k: _per_sample(v, batch) for k, v in flops_by_kind.items()}
    forward = sum(per_sample.values())
    params = sum(_params_of(name, b, table) for name, b in weights_seen.items())
    weight_bytes = sum(weights_seen.values())
    activation_bytes = _per_sample(activation_bytes, batch)
    moved = weight_bytes + activation_bytes
    parents = node_parents(
        [list(n.output) for n in graph.node], [list(n.input) for n in graph.node]
    )
    depth = longest_chain([1 if k in ("conv", "dense", "recurrent") else 0 for k in kinds], parents)
    family, reason = classify(kinds, parents, attention, control_flow)
    return GraphProfile(
        family=family,
        family_reason=reason,
        params=params,
        flops_forward=forward,
        flops_train=TRAIN_FACTOR * forward,
        flops_by_kind=per_sample,
        weight_bytes=weight_bytes,
        activation_bytes=activation_bytes,
        arithmetic_intensity=forward / moved if moved else 0.0,
        recurrent_steps=recurrent_steps,
        depth=depth,
        node_count=len(graph.node),
        warnings=tuple(warnings),
        input_shape=_sample_shape(table),
    )


def _sample_shape(table: ShapeTable) -> tuple[int, ...]:
    """One sample's shape of the first graph input (its batch axis dropped)."""
    shape = table.shape(table.inputs[0]) if table.inputs else None
    return tuple(shape[1:]) if shape else ()


def _per_sample(value: int, batch: int) -> int:
    return value if batch <= 1 else (value + batch // 2) // batch


def _params_of(name: str, nbytes: int, table: ShapeTable) -> int:
    return nbytes // bytes_per_element(table.elem_type(name))


def _count_weights(
    node: onnx.NodeProto,
    table: ShapeTable,
    status: dict[str, str],
    roots: dict[str, str],
    seen: dict[str, int],
) -> None:
    slots = _WEIGHT_SLOTS.get(node.op_type)
    if not slots:
        return
    # Elementwise ops and Gather hold a weight only when combined with an activation
    # (a bias, a scale, an embedding lookup).
    combined = any(status.get(n, DYNAMIC) == DYNAMIC for n in node.input if n)
    if (node.op_type in _ELEMENTWISE or node.op_type == "Gather") and not combined:
        return
    for slot in slots:
        name = node.input[slot] if len(node.input) > slot else ""
        if not name or status.get(name) != PARAM:
            continue
        name = roots.get(name, name)
        if name in seen:
            continue
        shape = table.shape(name)
        if shape is None or (node.op_type in _ELEMENTWISE and len(shape) == 0):
            continue
        seen[name] = numel(shape) * bytes_per_element(table.elem_type(name))
