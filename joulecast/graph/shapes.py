"""Shapes of every value of a validated graph: our own inference, onnx's C++ one as fallback.

The graph's inputs are pinned first: a symbolic batch (axis 0 of the first input) becomes 1 (an
explicit 0 is refused: it is no symbol, and a zero-size input holds nothing to compute); a
fixed batch is kept and reported, and the profiler divides counts by it. Then
:mod:`joulecast.graph.infer` walks the nodes once in plain Python. Only when some node's outputs
stay unknown (an op without a shape function here, control flow) is onnx's C++ inference run,
on a weightless copy seeded with every shape already known and *without* data propagation
(ours is bounded; onnx's is not). Weights are never read, so a full graph and its weightless
copy give identical results, and an already weightless graph is never stripped again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import onnx

from joulecast.graph.errors import GraphError, GraphTooLarge
from joulecast.graph.infer import Env, infer_node
from joulecast.graph.ir import Graph, Node
from joulecast.graph.parse import GraphLimits

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]

BYTES_PER_ELEMENT = {
    onnx.TensorProto.FLOAT: 4,
    onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.INT8: 1,
    onnx.TensorProto.UINT16: 2,
    onnx.TensorProto.INT16: 2,
    onnx.TensorProto.INT32: 4,
    onnx.TensorProto.INT64: 8,
    onnx.TensorProto.BOOL: 1,
    onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.DOUBLE: 8,
    onnx.TensorProto.UINT32: 4,
    onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BFLOAT16: 2,
}
FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, 11}
)
MAX_UNKNOWN_LISTED = 10
"""Nodes with unknown shapes named in the warning (the rest are counted)."""


def bytes_per_element(elem_type: int) -> int:
    """Bytes of one element; unknown types count as float32 (4)."""
    return BYTES_PER_ELEMENT.get(elem_type, 4)


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass
class ShapeTable:
    """What the profiler knows about each value name of the main graph."""

    shapes: dict[str, Shape | None] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    initializers: set[str] = field(default_factory=set)
    inputs: list[str] = field(default_factory=list)
    batch: int = 1
    warnings: list[str] = field(default_factory=list)
    unknown_nodes: list[str] = field(default_factory=list)
    """Labels of nodes whose outputs have no known shape after every fallback."""

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name) if name else None

    def elem_type(self, name: str) -> int:
        return self.types.get(name, onnx.TensorProto.FLOAT)


def _pin_inputs(graph: Graph, env: Env, table: ShapeTable) -> None:
    """Concrete input shapes: the batch (axis 0 of the first input) to 1, any other symbolic
    dim to 1 with one summarising warning."""
    symbolic: list[str] = []
    n_symbolic = 0
    first = True
    for name, elem_type, dims in graph.inputs:
        table.inputs.append(name)
        if dims is None:
            env.set(name, None, elem_type)
            first = False
            continue
        shape = []
        for axis, d in enumerate(dims):
            if d == 0:  # an explicit 0 (dim_value), not a symbol (dim_param or nothing)
                raise GraphError(
                    f"input {name[:60]!r} declares dimension 0 on axis {axis}: a zero-size input "
                    "holds nothing to compute (a symbolic dimension is written as a name)"
                )
            if isinstance(d, int):
                if first and axis == 0:
                    table.batch = d
                shape.append(d)
                continue
            if not (first and axis == 0):
                n_symbolic += 1
                if len(symbolic) < MAX_UNKNOWN_LISTED:
                    symbolic.append(f"{name!r} axis {axis} ({d or '?'!r})")
            shape.append(1)
        env.set(name, tuple(shape), elem_type)
        first = False
    if n_symbolic:
        more = f" and {n_symbolic - len(symbolic)} more" if n_symbolic > len(symbolic) else ""
        table.warnings.append(
            f"{n_symbolic} symbolic input dim(s) assumed 1: {', '.join(symbolic)}{more}"
        )


def infer(graph: Graph, model: onnx.ModelProto, limits: GraphLimits) -> ShapeTable:
    """Shapes of the main graph's values (``model`` is read only for the fallback)."""
    table = ShapeTable(warnings=list(graph.warnings))
    env = Env(limits, graph.opset)
    _pin_inputs(graph, env, table)
    for init in graph.initializers.values():
        table.initializers.add(init.name)
        env.set(init.name, init.dims, init.elem_type, init.values)
    pending: list[Node] = []
    known = env.shapes.get
    for node in graph.nodes:
        if infer_node(env, node):
            for o in node.outputs:
                if o and known(o) is None:
                    pending.append(node)
                    break
        else:
            pending.append(node)
    if pending:
        _fallback(graph, model, env, pending, table)
    table.shapes = env.shapes
    table.types = env.types
    return table


def _fallback(
    graph: Graph, model: onnx.ModelProto, env: Env, pending: list[Node], table: ShapeTable
) -> None:
    """Fill the shapes our inference left unknown: first from the graph's declared value info,
    then from onnx's C++ inference, re-running ours downstream of each fill."""
    declared = graph.value_info
    onnx_shapes: dict[str, tuple[int, Shape]] | None = None
    pending_ids = {id(n) for n in pending}
    first_pending = next(i for i, n in enumerate(graph.nodes) if id(n) in pending_ids)
    shapes = env.shapes
    unknown: list[str] = []
    for node in graph.nodes[first_pending:]:
        if all(not o or shapes.get(o) is not None for o in node.outputs):
            continue
        infer_node(env, node)
        for o in node.outputs:
            if not o or shapes.get(o) is not None:
                continue
            found = declared.get(o)
            if found is None or found[1] is None:
                if onnx_shapes is None:
                    onnx_shapes = _onnx_inference(model, env, table)
                found = onnx_shapes.get(o)
            if found is not None and found[1] is not None:
                env.set(o, found[1], found[0])
            elif o not in env.types:
                env.set(o, None, found[0] if found else onnx.TensorProto.FLOAT)
        if node.outputs and node.outputs[0] and shapes.get(node.outputs[0]) is None:
            unknown.append(node.label)
    table.unknown_nodes = unknown


def _onnx_inference(model: onnx.ModelProto, env: Env, table: ShapeTable) -> dict:
    """(elem type, shape) of values as onnx's C++ inference sees them, on a weightless copy
    whose inputs are pinned and whose known shapes are declared; no data propagation."""
    from joulecast.weightless import is_weightless, strip_model

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    if not is_weightless(copy):
        strip_model(copy)
    graph = copy.graph
    inits = {t.name for t in graph.initializer}
    declared = {vi.name for vi in graph.input}
    keep = []
    for t in graph.initializer:
        has = t.raw_data or t.int64_data or t.int32_data or t.float_data or t.double_data
        if has:
            keep.append(t)
        elif t.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    for vi in graph.input:
        if vi.name in inits:
            continue
        shape = env.shapes.get(vi.name)
        if shape is not None and vi.type.HasField("tensor_type"):
            vi.type.tensor_type.shape.Clear()
            for d in shape:
                vi.type.tensor_type.shape.dim.add().dim_value = d
    del graph.value_info[:]
    for name, shape in env.shapes.items():
        if shape is not None and name not in inits:
            graph.value_info.append(
                onnx.helper.make_tensor_value_info(name, env.types.get(name, 1), shape)
            )
    try:
        inferred = onnx.shape_inference.infer_shapes(
            copy, check_type=False, strict_mode=False, data_prop=False
        )
    except Exception as exc:  # onnx raises several types; none may crash the profiler
        table.warnings.append(f"onnx shape inference failed ({exc}); some shapes unknown")
        return {}
    out: dict[str, tuple[int, Shape | None]] = {}
    for vi in (*inferred.graph.value_info, *inferred.graph.output):
        if not vi.type.HasField("tensor_type"):
            continue
        tt = vi.type.tensor_type
        shape = None
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            if all(d >= 0 for d in dims):
                shape = tuple(dims)
                for d in shape:
                    if d > env.limits.max_dim:
                        raise GraphTooLarge(
                            f"value {vi.name!r} has inferred dimension {d}; the limit is "
                            f"{env.limits.max_dim}"
                        )
        out[vi.name] = (tt.elem_type, shape)
    return out
