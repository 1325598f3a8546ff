"""Shapes of every value of a validated graph: onnx's shape inference plus our own fallbacks.

The graph is first made weightless (the same function the collector uses), so a full graph and
its weightless copy give identical results. Data-less initializers become graph inputs before
inference, so onnx never looks for data that is not there. A dynamic batch dimension is set to
1; a fixed batch is kept and reported, and the profiler divides counts by it.
All arithmetic on dimensions is done on Python ints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from joulecast.graph.errors import GraphTooLarge
from joulecast.graph.parse import GraphLimits
from joulecast.weightless import strip_model

logger = logging.getLogger(__name__)

Shape = tuple[int, ...]

_BYTES_PER_ELEMENT = {
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


def bytes_per_element(elem_type: int) -> int:
    """Bytes of one element; unknown types count as float32 (4)."""
    return _BYTES_PER_ELEMENT.get(elem_type, 4)


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _has_data(t: onnx.TensorProto) -> bool:
    return bool(
        t.raw_data
        or t.float_data
        or t.int32_data
        or t.int64_data
        or t.double_data
        or t.uint64_data
        or t.string_data
    )


@dataclass
class ShapeTable:
    """What the profiler knows about each value name of the main graph."""

    shapes: dict[str, Shape | None] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    initializers: set[str] = field(default_factory=set)
    inputs: list[str] = field(default_factory=list)
    batch: int = 1
    warnings: list[str] = field(default_factory=list)

    def shape(self, name: str) -> Shape | None:
        return self.shapes.get(name) if name else None

    def elem_type(self, name: str) -> int:
        return self.types.get(name, onnx.TensorProto.FLOAT)


def _type_shape(vi: onnx.ValueInfoProto) -> tuple[int, Shape | None] | None:
    if not vi.type.HasField("tensor_type"):
        return None
    tt = vi.type.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims: list[int] = []
    for d in tt.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return tt.elem_type, None
        dims.append(int(d.dim_value))
    return tt.elem_type, tuple(dims)


def _fix_inputs(model: onnx.ModelProto, table: ShapeTable) -> None:
    """Pin symbolic input dims: the batch (axis 0) to 1, any other to 1 with a warning."""
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    first = True
    for vi in graph.input:
        if vi.name in init_names:
            continue
        table.inputs.append(vi.name)
        if not vi.type.HasField("tensor_type"):
            continue
        for axis, d in enumerate(vi.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                if first and axis == 0:
                    table.batch = int(d.dim_value)
                continue
            label = d.dim_param or "?"
            if not (first and axis == 0):
                table.warnings.append(
                    f"input {vi.name!r} axis {axis} is symbolic ({label!r}); assumed 1"
                )
            d.Clear()
            d.dim_value = 1
        first = False


def _initializers_to_inputs(model: onnx.ModelProto, table: ShapeTable) -> None:
    """Data-less initializers become typed graph inputs, so shape inference reads no data."""
    graph = model.graph
    declared = {vi.name for vi in graph.input}
    keep: list[onnx.TensorProto] = []
    for t in graph.initializer:
        table.initializers.add(t.name)
        table.types[t.name] = t.data_type
        table.shapes[t.name] = tuple(int(d) for d in t.dims)
        if _has_data(t) or numel(tuple(t.dims)) == 0:
            keep.append(t)
            continue
        if t.name not in declared:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims))
        else:  # IR < 4 lists initializers among inputs: the declared type stays
            pass
    del graph.initializer[:]
    graph.initializer.extend(keep)


_INT_TYPES = frozenset({onnx.TensorProto.INT64, onnx.TensorProto.INT32})
FOLD_MAX_ELEMENTS = 64
"""Integer constants up to this size are folded (shape and index arithmetic, never weights)."""
_FOLDABLE = frozenset({"Unsqueeze", "Squeeze", "Concat", "Identity"})


def _small_int(t: onnx.TensorProto) -> np.ndarray | None:
    if (
        t.data_type not in _INT_TYPES
        or not _has_data(t)
        or numel(tuple(t.dims)) > FOLD_MAX_ELEMENTS
    ):
        return None
    return numpy_helper.to_array(t)


def _axes(node: onnx.NodeProto, values: list[np.ndarray]) -> list[int] | None:
    if len(values) > 1:
        return [int(a) for a in values[1].reshape(-1)]
    for attr in node.attribute:
        if attr.name == "axes":
            return list(attr.ints)
    return None


def _evaluate(node: onnx.NodeProto, values: list[np.ndarray]) -> np.ndarray | None:
    """The value of one foldable node on constant inputs; None when it cannot say."""
    op = node.op_type
    if op == "Identity":
        return values[0]
    if op == "Concat":
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        return np.concatenate(values, axis=axis)
    axes = _axes(node, values)
    data = values[0]
    if op == "Squeeze":
        return np.squeeze(data) if axes is None else np.squeeze(data, axis=tuple(axes))
    if axes is None:
        return None
    rank = data.ndim + len(axes)
    for axis in sorted(a + rank if a < 0 else a for a in axes):
        data = np.expand_dims(data, axis)
    return data


def fold_small_constants(graph: onnx.GraphProto) -> int:
    """Replace Unsqueeze/Squeeze/Concat/Identity of small integer constants by Constant nodes.

    onnx's data propagation does not carry scalar constants, so an exporter's
    ``Constant -> Unsqueeze -> Slice`` (every ``x[:, :k]`` exported without constant folding)
    left the slice's shape, and everything after it, unknown. One node becomes one node, so
    node counts do not change. Returns the number of nodes folded.
    """
    known: dict[str, np.ndarray] = {}
    for t in graph.initializer:
        value = _small_int(t)
        if value is not None:
            known[t.name] = value
    folded = 0
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
            continue
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    value = _small_int(attr.t)
                    if value is not None:
                        known[node.output[0]] = value
            continue
        names = [n for n in node.input if n]
        if node.op_type not in _FOLDABLE or not names or any(n not in known for n in names):
            continue
        try:
            value = _evaluate(node, [known[n] for n in names])
        except (ValueError, IndexError, np.exceptions.AxisError):
            continue
        if value is None or value.size > FOLD_MAX_ELEMENTS:
            continue
        out = node.output[0]
        tensor = numpy_helper.from_array(np.asarray(value), name=out)
        node.CopyFrom(onnx.helper.make_node("Constant", [], [out], name=node.name, value=tensor))
        known[out] = np.asarray(value)
        folded += 1
    return folded


def infer(model: onnx.ModelProto, limits: GraphLimits) -> ShapeTable:
    """Shapes of the main graph's values. ``model`` (ours, already validated) is modified."""
    table = ShapeTable()
    strip_model(model)
    fold_small_constants(model.graph)
    _fix_inputs(model, table)
    _initializers_to_inputs(model, table)
    try:
        inferred = onnx.shape_inference.infer_shapes(
            model, check_type=False, strict_mode=False, data_prop=True
        )
    except Exception as exc:  # onnx raises several types; none may crash the profiler
        table.warnings.append(f"onnx shape inference failed ({exc}); using declared shapes only")
        inferred = model
    graph = inferred.graph
    for vi in (*graph.input, *graph.value_info, *graph.output):
        ts = _type_shape(vi)
        if ts is None:
            continue
        elem_type, shape = ts
        if vi.name in table.initializers and table.shapes.get(vi.name) is not None:
            continue
        table.types[vi.name] = elem_type
        if shape is not None:
            for d in shape:
                if d > limits.max_dim:
                    raise GraphTooLarge(
                        f"value {vi.name!r} has inferred dimension {d}; the limit is "
                        f"{limits.max_dim}"
                    )
        table.shapes[vi.name] = shape
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value" and attr.HasField("t"):
                    table.shapes[node.output[0]] = tuple(int(d) for d in attr.t.dims)
                    table.types[node.output[0]] = attr.t.data_type
    return table
