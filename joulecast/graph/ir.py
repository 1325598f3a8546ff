"""A validated ONNX model as plain Python data: one pass over the protobuf, then no more of it.

Reading protobuf fields from Python costs about a microsecond each, so the profiler touches
every node, attribute and tensor header exactly once here and works on tuples and dicts after.
The same pass checks the limits of :class:`~joulecast.graph.parse.GraphLimits`: external data,
declared dimensions, subgraph nesting, and the node count *after* expanding ONNX local
functions (a function calling another twice, k deep, is 2^k nodes for onnx's inference).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from math import prod

import numpy as np
import onnx

from joulecast.graph.errors import ExternalDataRefused, GraphError, GraphTooLarge
from joulecast.graph.opset import graph_opset
from joulecast.graph.order import topological
from joulecast.graph.parse import GraphLimits
from joulecast.graph.values import FLOAT_PARAMS, VALUE_ELEMENTS

_AT = onnx.AttributeProto
_EXTERNAL = onnx.TensorProto.EXTERNAL
_INT_TYPES = frozenset(
    {
        onnx.TensorProto.INT64,
        onnx.TensorProto.INT32,
        onnx.TensorProto.INT16,
        onnx.TensorProto.INT8,
        onnx.TensorProto.UINT8,
        onnx.TensorProto.UINT16,
        onnx.TensorProto.UINT32,
        onnx.TensorProto.UINT64,
        onnx.TensorProto.BOOL,
    }
)
_NO_ATTRS: dict[str, object] = {}
_LITTLE = sys.byteorder == "little"
_ARRAY_CODES = {
    onnx.TensorProto.INT64: "q",
    onnx.TensorProto.INT32: "i",
    onnx.TensorProto.FLOAT: "f",
    onnx.TensorProto.DOUBLE: "d",
}


@dataclass(slots=True)
class Node:
    """One node of the main graph. ``attrs`` maps names to ints, floats, bytes, tuples or (for
    tensors and graphs) the protobuf object itself."""

    op: str
    domain: str
    proto: onnx.NodeProto
    """The node as parsed (read only for its name, when a message needs it)."""
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, object]

    @property
    def name(self) -> str:
        return self.proto.name

    @property
    def label(self) -> str:
        name = self.proto.name
        return f"{self.op} {name!r}" if name else self.op


@dataclass(slots=True)
class Initializer:
    name: str
    elem_type: int
    dims: tuple[int, ...]
    values: tuple | None = None
    """The values (row-major) when small and readable; ``None`` otherwise."""


@dataclass
class Graph:
    """The main graph as plain data (the part the profiler counts)."""

    nodes: list[Node]
    initializers: dict[str, Initializer]
    inputs: list[tuple[str, int, list[int | str | None] | None]]
    """(name, element type, dims) of each graph input that is not an initializer; a dim is an
    int, a symbol (str) or None (unknown); dims None: rank unknown."""
    value_info: dict[str, tuple[int, tuple[int, ...] | None]] = field(default_factory=dict)
    """Declared (element type, concrete shape or None) of intermediate values."""
    opset: int = 17
    expanded_nodes: int = 0
    """Nodes after local-function expansion, subgraphs included."""
    warnings: list[str] = field(default_factory=list)
    """What reading the graph found worth saying (a newer opset, nodes out of order)."""


def tensor_values(t: onnx.TensorProto, limit: int = VALUE_ELEMENTS) -> tuple | None:
    """Row-major values of a small tensor held in the graph, or None (too big, no data,
    unsupported type)."""
    n = prod(t.dims[:])
    if n > limit or n < 0:
        return None
    dt = t.data_type
    raw = t.raw_data  # each read of the field copies it: read once
    if raw:
        code = _ARRAY_CODES.get(dt)
        if code is not None and _LITTLE:
            arr = array(code)
            if arr.itemsize * n != len(raw):
                return None
            arr.frombytes(raw)
            return tuple(arr)
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(dt)
        except (KeyError, ValueError, TypeError):
            return None
        if dtype.itemsize * n != len(raw):
            return None
        arr = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
        return tuple(arr.tolist())
    if dt in (onnx.TensorProto.INT64,):
        vals = tuple(t.int64_data)
    elif dt in (onnx.TensorProto.FLOAT,):
        vals = tuple(t.float_data)
    elif dt == onnx.TensorProto.DOUBLE:
        vals = tuple(t.double_data)
    elif dt in (onnx.TensorProto.UINT64, onnx.TensorProto.UINT32):
        vals = tuple(t.uint64_data)
    elif dt in _INT_TYPES:
        vals = tuple(t.int32_data)
    else:
        return None
    return vals if len(vals) == n else None


def _check_tensor(t: onnx.TensorProto, where: str, limits: GraphLimits) -> None:
    if t.data_location == _EXTERNAL or len(t.external_data) > 0:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        raise ExternalDataRefused(
            f"tensor {t.name!r} ({where}) refers to external data (location {location!r}); "
            "external data is never read: upload a weightless graph "
            "(joulecast.weightless.strip_weights)"
        )
    check_dims(t.dims, f"tensor {t.name!r} ({where})", limits)


def check_dims(dims: Iterable[int], what: str, limits: GraphLimits) -> None:
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


def _check_sparse(s: onnx.SparseTensorProto, where: str, limits: GraphLimits) -> None:
    _check_tensor(s.values, where, limits)
    _check_tensor(s.indices, where, limits)
    check_dims(s.dims, f"sparse tensor {s.values.name!r} ({where})", limits)


def _attrs(
    node: onnx.NodeProto, where: str, limits: GraphLimits, subgraphs: list[onnx.GraphProto]
) -> dict[str, object]:
    out: dict[str, object] = {}
    for a in node.attribute:
        t = a.type
        if t == _AT.INT:
            out[a.name] = a.i
        elif t == _AT.INTS:
            out[a.name] = tuple(a.ints)
        elif t == _AT.FLOAT:
            out[a.name] = a.f
        elif t == _AT.STRING:
            out[a.name] = a.s
        elif t == _AT.FLOATS:
            out[a.name] = tuple(a.floats)
        else:
            _attr_objects(a, node, where, limits, subgraphs, out)
    return out


def _attr_objects(
    a: onnx.AttributeProto,
    node: onnx.NodeProto,
    where: str,
    limits: GraphLimits,
    subgraphs: list[onnx.GraphProto],
    out: dict[str, object],
) -> None:
    """An attribute that may hold tensors or graphs: every one it holds is checked, whatever its
    declared type. The fields set are listed in one call (field-number order: t, g, tensors,
    graphs, sparse_tensor, sparse_tensors), the checks run in that order, and ``out`` gets the
    tensor, else the sparse tensor, else the graph."""
    name = a.name
    found: dict[int, object] = {}
    for fd, value in a.ListFields():
        number = fd.number
        if number == _T:
            _check_tensor_fast(value, a, node, where, limits)
        elif number == _TENSORS:
            for x in value:
                _check_tensor_fast(x, a, node, where, limits)
        elif number == _SPARSE:
            _check_sparse(value, _attr_where(a, node, where), limits)
        elif number == _SPARSES:
            for x in value:
                _check_sparse(x, _attr_where(a, node, where), limits)
        found[number] = value
    if _T in found:
        out[name] = found[_T]
    if _SPARSE in found:
        out.setdefault(name, found[_SPARSE])
    if _G in found:
        subgraphs.append(found[_G])  # type: ignore[arg-type]
        out.setdefault(name, found[_G])
    if _GRAPHS in found:
        subgraphs.extend(found[_GRAPHS])  # type: ignore[arg-type]
    if a.type == _AT.STRINGS:
        out[name] = tuple(a.strings)


_T, _G, _TENSORS, _GRAPHS, _SPARSE, _SPARSES = (
    onnx.AttributeProto.DESCRIPTOR.fields_by_name[n].number
    for n in ("t", "g", "tensors", "graphs", "sparse_tensor", "sparse_tensors")
)


def _attr_where(a: onnx.AttributeProto, node: onnx.NodeProto, where: str) -> str:
    return f"attribute {a.name!r} of node {node.name or node.op_type!r} in {where}"


def _check_tensor_fast(
    t: onnx.TensorProto,
    a: onnx.AttributeProto,
    node: onnx.NodeProto,
    where: str,
    limits: GraphLimits,
) -> None:
    """:func:`_check_tensor`, naming the attribute only when the tensor is refused."""
    dims = t.dims[:]
    if (
        t.data_location == _EXTERNAL
        or t.external_data
        or (dims and (min(dims) < 0 or max(dims) > limits.max_dim))
        or prod(dims) > limits.max_elements
    ):
        _check_tensor(t, _attr_where(a, node, where), limits)


def _declared(vi: onnx.ValueInfoProto, where: str, limits: GraphLimits):
    """(elem type, dims) of a value info; dims entries are int, str (symbol) or None."""
    tp = vi.type
    for _ in range(limits.max_nesting + 1):
        if tp.HasField("sequence_type"):
            tp = tp.sequence_type.elem_type
        elif tp.HasField("optional_type"):
            tp = tp.optional_type.elem_type
        elif tp.HasField("map_type"):
            tp = tp.map_type.value_type
        else:
            break
    if not tp.HasField("tensor_type"):
        return None
    tt = tp.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims: list[int | str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            v = d.dim_value
            if v < 0:
                raise GraphError(f"value {vi.name!r} ({where}) declares a negative dimension {v}")
            if v > limits.max_dim:
                raise GraphTooLarge(
                    f"value {vi.name!r} ({where}) declares dimension {v}; the limit is "
                    f"{limits.max_dim}"
                )
            dims.append(v)
        else:
            dims.append(d.dim_param or None)
    known = [d for d in dims if isinstance(d, int)]
    check_dims(known, f"value {vi.name!r} ({where})", limits)
    return tt.elem_type, dims


def _walk_subgraphs(
    graphs: list[onnx.GraphProto],
    depth: int,
    limits: GraphLimits,
    calls: dict[tuple[str, str], int],
    budget: list[int],
) -> None:
    """Validate nested graphs iteratively; count their (expanded) nodes into ``budget``."""
    stack = [(g, depth) for g in graphs]
    while stack:
        graph, d = stack.pop()
        if d > limits.max_nesting:
            raise GraphTooLarge(
                f"subgraph nesting depth {d} (graph {graph.name!r}) exceeds the limit of "
                f"{limits.max_nesting}"
            )
        where = f"graph {graph.name!r}"
        for t in graph.initializer:
            _check_tensor(t, f"initializer of {where}", limits)
        for s in graph.sparse_initializer:
            _check_sparse(s, f"sparse initializer of {where}", limits)
        for vi in (*graph.input, *graph.output, *graph.value_info):
            _declared(vi, where, limits)
        for node in graph.node:
            _spend(budget, calls.get((node.domain, node.op_type), 1), limits)
            inner: list[onnx.GraphProto] = []
            _attrs(node, where, limits, inner)
            stack.extend((g, d + 1) for g in inner)


def _spend(budget: list[int], n: int, limits: GraphLimits) -> None:
    budget[0] += n
    if budget[0] > limits.max_nodes:
        raise GraphTooLarge(
            f"graph has more than {limits.max_nodes} nodes (counting ONNX local functions "
            "expanded at every call and nodes of subgraphs)"
        )


def _function_sizes(model: onnx.ModelProto, limits: GraphLimits) -> dict[tuple[str, str], int]:
    """Expanded node count of each local function, with its nested graphs; refuses recursion
    and any function that alone exceeds the node limit. Iterative: a deep call chain cannot
    exhaust Python's stack."""
    functions = {(f.domain, f.name): f for f in model.functions}
    if len(functions) > limits.max_nodes:
        raise GraphTooLarge(f"graph declares more than {limits.max_nodes} functions")
    sizes: dict[tuple[str, str], int] = {}
    for root in functions:
        if root in sizes:
            continue
        stack: list[tuple[tuple[str, str], bool]] = [(root, False)]
        active: set[tuple[str, str]] = set()
        while stack:
            key, done = stack.pop()
            f = functions[key]
            if done:
                active.discard(key)
                cap = [0]
                for node in f.node:
                    _spend(cap, sizes.get((node.domain, node.op_type), 1), limits)
                    inner: list[onnx.GraphProto] = []
                    _attrs(node, f"function {f.name!r}", limits, inner)
                    _walk_subgraphs(inner, 1, limits, sizes, cap)
                sizes[key] = cap[0]
                continue
            if key in sizes:
                continue
            if key in active:
                raise GraphError(f"function {f.name!r} calls itself (recursion is not allowed)")
            active.add(key)
            stack.append((key, True))
            for node in f.node:
                callee = (node.domain, node.op_type)
                if callee in functions and callee not in sizes:
                    if callee in active:
                        raise GraphError(
                            f"function {f.name!r} calls itself (recursion is not allowed)"
                        )
                    stack.append((callee, False))
    return sizes


def read_graph(model: onnx.ModelProto, limits: GraphLimits) -> Graph:
    """The main graph of a parsed model as plain data, every limit checked on the way."""
    calls = _function_sizes(model, limits) if len(model.functions) else {}
    graph = model.graph
    budget = [0]
    where = f"graph {graph.name!r}"
    n_nodes = len(graph.node)
    if n_nodes > limits.max_nodes:
        raise GraphTooLarge(f"graph has more than {limits.max_nodes} nodes")
    initializers: dict[str, Initializer] = {}
    max_dim, max_elements = limits.max_dim, limits.max_elements
    for t in graph.initializer:
        dims = tuple(t.dims[:])  # a slice is read in one call; tuple(t.dims) iterates
        if (
            t.data_location == _EXTERNAL
            or t.external_data
            or (dims and (min(dims) < 0 or max(dims) > max_dim or prod(dims) > max_elements))
        ):
            _check_tensor(t, f"initializer of {where}", limits)  # raises with the reason
        dt = t.data_type
        name = t.name
        init = Initializer(name, dt, dims)
        if dt not in FLOAT_PARAMS and prod(dims) <= VALUE_ELEMENTS:
            init.values = tensor_values(t)  # float initializers are weights: never read
        initializers[name] = init
    for s in graph.sparse_initializer:
        _check_sparse(s, f"sparse initializer of {where}", limits)
        v = s.values
        initializers[v.name] = Initializer(v.name, v.data_type, tuple(s.dims))
    inputs = []
    for vi in graph.input:
        declared = _declared(vi, where, limits)
        if vi.name in initializers:
            continue
        if declared is None:
            inputs.append((vi.name, onnx.TensorProto.FLOAT, None))
        else:
            inputs.append((vi.name, declared[0], declared[1]))
    value_info: dict[str, tuple[int, tuple[int, ...] | None]] = {}
    for vi in (*graph.value_info, *graph.output):
        declared = _declared(vi, where, limits)
        if declared is None:
            continue
        dims = declared[1]
        concrete = None if dims is None or not all(isinstance(d, int) for d in dims) else dims
        value_info[vi.name] = (declared[0], None if concrete is None else tuple(concrete))
    nodes: list[Node] = []
    subgraphs: list[onnx.GraphProto] = []
    append = nodes.append
    for node in graph.node:
        op = node.op_type
        domain = node.domain
        attrs = _attrs(node, where, limits, subgraphs) if node.attribute else _NO_ATTRS
        append(Node(op, domain, node, node.input[:], node.output[:], attrs))
        if calls:
            size = calls.get((domain, op))
            if size is not None:
                _spend(budget, size - 1, limits)
    _spend(budget, n_nodes, limits)
    if subgraphs:
        _walk_subgraphs(subgraphs, 1, limits, calls, budget)
    opset, warnings = graph_opset(model)
    order, unsorted = topological(nodes)
    if unsorted is not None:
        nodes = [nodes[i] for i in order]
        warnings = (*warnings, unsorted)
    return Graph(
        nodes=nodes,
        initializers=initializers,
        inputs=inputs,
        value_info=value_info,
        opset=opset,
        expanded_nodes=budget[0],
        warnings=list(warnings),
    )
