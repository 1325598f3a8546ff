"""Shapes (and small integer values) of every value of the main graph, in plain Python.

One forward pass in topological order with the graph's concrete input shapes (a symbolic batch
set to 1). Besides shapes it propagates the *values* of small tensors (shape vectors, Slice
bounds, Reshape targets) so that what onnx's own inference loses (Split/Slice after a computed
``chunk``, Reshape with computed shapes, Gather of shape tensors) stays known. That
propagation is bounded: a value tensor of more than ``VALUE_LIMIT`` elements is refused when it
comes from shape arithmetic (``Concat(s, s)`` doubling) and simply not tracked when it comes
from a generator (``Range``); every inferred tensor obeys the graph limits (dims, elements).

An op without a shape function here leaves its outputs unknown; the caller may then ask
onnx's C++ inference (without data propagation) for those. All arithmetic is on Python ints.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from math import prod

import onnx

from joulecast.graph.errors import GraphError, GraphTooLarge
from joulecast.graph.ir import Node, tensor_values
from joulecast.graph.parse import GraphLimits

Shape = tuple[int, ...]
T = onnx.TensorProto
INT64, FLOAT, BOOL = T.INT64, T.FLOAT, T.BOOL

VALUE_LIMIT = 4096
"""Most elements of one propagated value (shape vectors have as many as the tensor's rank)."""
VALUE_WORK_LIMIT = 1 << 20
"""Most elements produced by value propagation over the whole graph."""


class Env:
    """What inference knows: shape, element type and (small) value of each name."""

    __slots__ = ("limits", "max_dim", "max_elements", "opset", "shapes", "types", "values", "work")

    def __init__(self, limits: GraphLimits, opset: int) -> None:
        self.shapes: dict[str, Shape | None] = {}
        self.types: dict[str, int] = {}
        self.values: dict[str, tuple] = {}
        self.limits = limits
        self.max_dim = limits.max_dim
        self.max_elements = limits.max_elements
        self.work = 0
        self.opset = opset

    def set(self, name: str, shape: Shape | None, elem_type: int, values: tuple | None = None):
        if not name:
            return
        if shape is not None:
            if shape and (min(shape) < 0 or max(shape) > self.max_dim):
                for d in shape:
                    if d < 0:
                        raise GraphError(f"value {name!r} would have a negative dimension {d}")
                raise GraphTooLarge(
                    f"value {name!r} has inferred dimension {_big(max(shape))}; the limit is "
                    f"{self.max_dim}"
                )
            n = prod(shape)
            if n > self.max_elements:
                raise GraphTooLarge(
                    f"value {name!r} would have {_big(n)} elements; the limit is "
                    f"{self.max_elements} per tensor"
                )
            if values is not None and len(values) != n:
                values = None
        self.shapes[name] = shape
        self.types[name] = elem_type
        if values is not None:
            self.values[name] = values


def _big(n: int) -> str:
    """A count for a message: exact when short, else 3 digits, else a power of two."""
    if n < 10**12:
        return str(n)
    return f"{n:.3g}" if n < 10**300 else f"~2^{n.bit_length() - 1}"


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _track(env: Env, node: Node, n: int, generator: bool = False) -> bool:
    """Whether a value of ``n`` elements may be propagated; refuses runaway shape arithmetic."""
    if n > VALUE_LIMIT:
        if generator:
            return False
        raise GraphTooLarge(
            f"{node.label}: shape-value propagation would build a tensor of {n} elements; the "
            f"limit is {VALUE_LIMIT}"
        )
    env.work += n
    if env.work > VALUE_WORK_LIMIT:
        raise GraphTooLarge(
            f"shape-value propagation exceeds {VALUE_WORK_LIMIT} elements in total "
            f"(at {node.label})"
        )
    return True


def _axis(axis: int, rank: int, node: Node) -> int:
    a = axis + rank if axis < 0 else axis
    if not 0 <= a < max(rank, 1):
        raise GraphError(f"{node.label}: axis {axis} is out of range for rank {rank}")
    return a


def _broadcast(shapes: list[Shape], node: Node) -> Shape:
    rank = max(len(s) for s in shapes)
    out = []
    for i in range(rank):
        d = 1
        for s in shapes:
            j = i - rank + len(s)
            if j < 0:
                continue
            x = s[j]
            if x == 1:
                continue
            if d not in (1, x):
                raise GraphError(f"{node.label}: shapes {shapes} do not broadcast")
            d = x
        out.append(d)
    return tuple(out)


def _in(env: Env, node: Node, i: int) -> Shape | None:
    name = node.inputs[i] if len(node.inputs) > i else ""
    return env.shapes.get(name) if name else None


def _val(env: Env, node: Node, i: int) -> tuple | None:
    name = node.inputs[i] if len(node.inputs) > i else ""
    return env.values.get(name) if name else None


def _type(env: Env, node: Node, i: int = 0) -> int:
    name = node.inputs[i] if len(node.inputs) > i else ""
    return env.types.get(name, FLOAT)


def _ints(values: tuple | None) -> tuple[int, ...] | None:
    if values is None:
        return None
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError, OverflowError):
        return None


def _out(env: Env, node: Node, shape: Shape | None, elem_type: int, values=None, i: int = 0):
    if len(node.outputs) > i:
        env.set(node.outputs[i], shape, elem_type, values)


# ---- shape functions: each sets the node's outputs it can ----------------------------------


def _same(env: Env, node: Node) -> None:
    if node.outputs:  # _out(env, node, _in(env, node, 0), _type(env, node)), inlined: hot
        name = node.inputs[0] if node.inputs else ""
        shape = env.shapes.get(name) if name else None
        env.set(node.outputs[0], shape, env.types.get(name, FLOAT))


def _unary_value(fn: Callable[[object], object]) -> Callable[[Env, Node], None]:
    def infer(env: Env, node: Node) -> None:
        s, v = _in(env, node, 0), _val(env, node, 0)
        out = None
        if v is not None:
            try:
                out = tuple(fn(x) for x in v)
            except (ArithmeticError, TypeError, ValueError):
                out = None
        _out(env, node, s, _type(env, node), out)

    return infer


def _binary(fn: Callable[[object, object], object] | None, out_type: int | None = None):
    def infer(env: Env, node: Node) -> None:
        shapes = [_in(env, node, i) for i in range(len(node.inputs))]
        if not shapes or any(s is None for s in shapes):
            _out(env, node, None, out_type or _type(env, node))
            return
        shape = _broadcast(shapes, node)  # type: ignore[arg-type]
        etype = out_type or _type(env, node)
        values = None
        if fn is not None and len(shapes) == 2:
            a, b = _val(env, node, 0), _val(env, node, 1)
            n = _numel(shape)
            if a is not None and b is not None and n <= VALUE_LIMIT:
                values = _broadcast_values(fn, a, shapes[0], b, shapes[1], shape)  # type: ignore[arg-type]
                if values is not None:
                    _track(env, node, n)
        _out(env, node, shape, etype, values)

    return infer


def _broadcast_values(fn, a, sa: Shape, b, sb: Shape, out: Shape) -> tuple | None:
    n = _numel(out)
    if len(a) == n and len(b) == n and sa == sb:
        pairs = zip(a, b, strict=True)
    elif len(a) == 1:
        pairs = ((a[0], y) for y in b) if len(b) == n else None
    elif len(b) == 1:
        pairs = ((x, b[0]) for x in a) if len(a) == n else None
    else:
        pairs = None
    if pairs is None:
        return None
    try:
        return tuple(fn(x, y) for x, y in pairs)
    except (ArithmeticError, TypeError, ValueError):
        return None


def _div(x, y):
    if isinstance(x, int) and isinstance(y, int):
        q = abs(x) // abs(y)
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _mod(env: Env, node: Node) -> None:
    if node.attrs.get("fmod", 0):
        _binary(math.fmod)(env, node)
    else:
        _binary(lambda a, b: a % b)(env, node)


def _where(env: Env, node: Node) -> None:
    shapes = [_in(env, node, i) for i in range(3)]
    if any(s is None for s in shapes):
        _out(env, node, None, _type(env, node, 1))
        return
    shape = _broadcast(shapes, node)  # type: ignore[arg-type]
    c, x, y = (_val(env, node, i) for i in range(3))
    values = None
    n = _numel(shape)
    if c is not None and x is not None and y is not None and n <= VALUE_LIMIT:

        def pick(i: int, v: tuple):
            return v[i] if len(v) == n else v[0] if len(v) == 1 else None

        vals = [pick(i, x) if pick(i, c) else pick(i, y) for i in range(n)]
        if None not in vals and all(len(v) in (1, n) for v in (c, x, y)):
            values = tuple(vals)
            _track(env, node, n)
    _out(env, node, shape, _type(env, node, 1), values)


def _matmul(env: Env, node: Node) -> None:
    a, b = _in(env, node, 0), _in(env, node, 1)
    if a is None or b is None or not a or not b:
        _out(env, node, None, _type(env, node))
        return
    if len(a) == 2 and len(b) == 2:  # the common case, without the general broadcast
        if a[1] != b[0]:
            raise GraphError(f"{node.label}: inner dimensions {a} x {b} do not match")
        _out(env, node, (a[0], b[1]), _type(env, node))
        return
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    if a2[-1] != b2[-2]:
        raise GraphError(f"{node.label}: inner dimensions {a} x {b} do not match")
    batch = _broadcast([a2[:-2], b2[:-2]], node)
    out = (*batch, a2[-2], b2[-1])
    if len(a) == 1:
        out = (*out[:-2], out[-1])
    if len(b) == 1:
        out = out[:-1]
    _out(env, node, out, _type(env, node))


def _gemm(env: Env, node: Node) -> None:
    a, b = _in(env, node, 0), _in(env, node, 1)
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        _out(env, node, None, _type(env, node))
        return
    m, k = (a[1], a[0]) if node.attrs.get("transA", 0) else a
    k_b, n = (b[1], b[0]) if node.attrs.get("transB", 0) else b
    if k != k_b:
        raise GraphError(f"{node.label}: inner dimensions {a} x {b} do not match")
    _out(env, node, (m, n), _type(env, node))


def _spatial_attrs(node: Node, rank: int, kernel: Shape) -> tuple[Shape, Shape, list[int]]:
    at = node.attrs
    strides = tuple(at.get("strides", ())) or (1,) * rank
    dilations = tuple(at.get("dilations", ())) or (1,) * rank
    pads = list(at.get("pads", ())) or [0] * (2 * rank)
    if len(strides) != rank or len(dilations) != rank or len(pads) != 2 * rank:
        raise GraphError(f"{node.label}: strides/dilations/pads do not match {rank} spatial axes")
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations):
        raise GraphError(f"{node.label}: strides and dilations must be >= 1")
    if any(p < 0 for p in pads):
        raise GraphError(f"{node.label}: negative pads {tuple(pads)}")
    if any(k < 1 for k in kernel):
        raise GraphError(f"{node.label}: kernel {kernel} has a dimension below 1")
    return strides, dilations, pads


def _pool_like(node: Node, x: Shape, kernel: Shape, ceil_mode: bool) -> Shape:
    rank = len(x) - 2
    if len(kernel) != rank:
        raise GraphError(f"{node.label}: kernel {kernel} does not match input {x}")
    strides, dilations, pads = _spatial_attrs(node, rank, kernel)
    auto_pad = node.attrs.get("auto_pad", b"NOTSET")
    out = []
    for i in range(rank):
        size, s, ek = x[2 + i], strides[i], dilations[i] * (kernel[i] - 1) + 1
        if auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
            out.append(-(-size // s))
            continue
        span = size - ek if auto_pad == b"VALID" else size + pads[i] + pads[i + rank] - ek
        if span < 0:
            raise GraphError(f"{node.label}: kernel {kernel} is larger than the padded input {x}")
        if ceil_mode:
            o = -(-span // s) + 1
            if (o - 1) * s >= size + pads[i]:
                o -= 1
        else:
            o = span // s + 1
        out.append(o)
    return tuple(out)


def _conv_operands(env: Env, node: Node) -> tuple[Shape, Shape, int] | None:
    """(input shape, weight shape, element type) of a Conv-like node; None, with the output
    left unknown, when a shape is unknown or the ranks differ."""
    x, w = _in(env, node, 0), _in(env, node, 1)
    etype = _type(env, node)
    if x is None or w is None or len(x) < 3 or len(w) != len(x):
        _out(env, node, None, etype)
        return None
    return x, w, etype


def _conv(env: Env, node: Node) -> None:
    operands = _conv_operands(env, node)
    if operands is None:
        return
    x, w, etype = operands
    group = node.attrs.get("group", 1)
    if not isinstance(group, int) or group < 1:
        raise GraphError(f"{node.label}: group must be a positive integer, got {group}")
    if x[1] % group or w[0] % group or w[1] * group != x[1]:
        raise GraphError(
            f"{node.label}: group {group} does not fit {x[1]} input and {w[0]} output channels "
            f"(weight {w})"
        )
    kernel = tuple(node.attrs.get("kernel_shape", ())) or w[2:]
    if kernel != w[2:]:
        raise GraphError(f"{node.label}: kernel_shape {kernel} differs from the weight {w}")
    _out(env, node, (x[0], w[0], *_pool_like(node, x, kernel, False)), etype)


def _conv_transpose(env: Env, node: Node) -> None:
    operands = _conv_operands(env, node)
    if operands is None:
        return
    x, w, etype = operands
    group = node.attrs.get("group", 1)
    if not isinstance(group, int) or group < 1 or x[1] % group or w[0] != x[1]:
        raise GraphError(
            f"{node.label}: group {group} does not fit {x[1]} input channels (weight {w})"
        )
    rank = len(x) - 2
    kernel = tuple(node.attrs.get("kernel_shape", ())) or w[2:]
    strides, dilations, pads = _spatial_attrs(node, rank, kernel)
    out_pad = tuple(node.attrs.get("output_padding", ())) or (0,) * rank
    explicit = tuple(node.attrs.get("output_shape", ()))
    auto_pad = node.attrs.get("auto_pad", b"NOTSET")
    if len(out_pad) != rank or any(p < 0 for p in out_pad):
        raise GraphError(f"{node.label}: bad output_padding {out_pad}")
    if explicit:
        spatial = explicit[-rank:]
    elif auto_pad in (b"SAME_UPPER", b"SAME_LOWER"):
        spatial = tuple(x[2 + i] * strides[i] for i in range(rank))
    else:
        spatial = tuple(
            strides[i] * (x[2 + i] - 1)
            + out_pad[i]
            + (kernel[i] - 1) * dilations[i]
            + 1
            - pads[i]
            - pads[i + rank]
            for i in range(rank)
        )
    if any(d < 1 for d in spatial):
        raise GraphError(f"{node.label}: output size {spatial} is not positive")
    _out(env, node, (x[0], w[1] * group, *spatial), etype)


def _pool(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = _type(env, node)
    kernel = tuple(node.attrs.get("kernel_shape", ()))
    if x is None or len(x) < 3 or not kernel:
        _out(env, node, None, etype)
        return
    shape = (x[0], x[1], *_pool_like(node, x, kernel, bool(node.attrs.get("ceil_mode", 0))))
    _out(env, node, shape, etype)
    _out(env, node, shape, INT64, i=1)


def _global_pool(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    _out(env, node, None if x is None else (*x[:2], *(1,) * (len(x) - 2)), _type(env, node))


_GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def _recurrent(env: Env, node: Node) -> None:
    x, w = _in(env, node, 0), _in(env, node, 1)
    etype = _type(env, node)
    hidden = node.attrs.get("hidden_size")
    if hidden is not None and (not isinstance(hidden, int) or hidden < 1):
        raise GraphError(f"{node.label}: hidden_size must be a positive integer, got {hidden}")
    if w is not None and len(w) == 3:
        gates = _GATES[node.op]
        if hidden is None:
            if w[1] % gates:
                raise GraphError(f"{node.label}: weight {w} is not {gates} gates")
            hidden = w[1] // gates
        elif w[1] != gates * hidden:
            raise GraphError(f"{node.label}: weight {w} does not match hidden_size {hidden}")
    if x is None or len(x) != 3 or hidden is None:
        for i in range(len(node.outputs)):
            _out(env, node, None, etype, i=i)
        return
    direction = node.attrs.get("direction", b"forward")
    dirs = 2 if direction == b"bidirectional" else 1
    if node.attrs.get("layout", 0):
        batch, steps = x[0], x[1]
        y, yh = (batch, steps, dirs, hidden), (batch, dirs, hidden)
    else:
        steps, batch = x[0], x[1]
        y, yh = (steps, dirs, batch, hidden), (dirs, batch, hidden)
    _out(env, node, y, etype)
    _out(env, node, yh, etype, i=1)
    _out(env, node, yh, etype, i=2)


def _norm(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = _type(env, node)
    _out(env, node, x, etype)
    if node.op == "LayerNormalization" and x is not None and len(node.outputs) > 1:
        axis = _axis(node.attrs.get("axis", -1), len(x), node)
        stat = (*x[:axis], *(1,) * (len(x) - axis))
        _out(env, node, stat, FLOAT, i=1)
        _out(env, node, stat, FLOAT, i=2)


def _dropout(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    _out(env, node, x, _type(env, node), _val(env, node, 0))
    _out(env, node, x, BOOL, i=1)


def _identity(env: Env, node: Node) -> None:
    _out(env, node, _in(env, node, 0), _type(env, node), _val(env, node, 0))


def _cast(env: Env, node: Node) -> None:
    to = node.attrs.get("to", FLOAT)
    v = _val(env, node, 0)
    if v is not None:
        if to in (T.FLOAT, T.DOUBLE, T.FLOAT16, T.BFLOAT16):
            v = tuple(float(a) for a in v)
        elif to == BOOL:
            v = tuple(bool(a) for a in v)
        else:
            v = _ints(tuple(math.trunc(a) for a in v) if all(math.isfinite(a) for a in v) else None)
    _out(env, node, _in(env, node, 0), to, v)


def _shape(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    if x is None:
        _out(env, node, None, INT64)
        return
    r = len(x)
    start = node.attrs.get("start", 0)
    end = node.attrs.get("end", r)
    start = min(max(start + r if start < 0 else start, 0), r)
    end = min(max(end + r if end < 0 else end, 0), r)
    dims = x[start:end]
    _track(env, node, len(dims))
    _out(env, node, (len(dims),), INT64, tuple(dims))


def _size(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    _out(env, node, (), INT64, None if x is None else (_numel(x),))


def _constant(env: Env, node: Node) -> None:
    at = node.attrs
    if "value" in at and isinstance(at["value"], onnx.TensorProto):
        t = at["value"]
        _out(env, node, tuple(t.dims[:]), t.data_type, tensor_values(t))
    elif "value_int" in at:
        _out(env, node, (), INT64, (at["value_int"],))
    elif "value_ints" in at:
        v = tuple(at["value_ints"])
        _out(env, node, (len(v),), INT64, v if len(v) <= VALUE_LIMIT else None)
    elif "value_float" in at:
        _out(env, node, (), FLOAT, (at["value_float"],))
    elif "value_floats" in at:
        v = tuple(at["value_floats"])
        _out(env, node, (len(v),), FLOAT, v if len(v) <= VALUE_LIMIT else None)
    else:
        _out(env, node, None, FLOAT)


def _constant_of_shape(env: Env, node: Node) -> None:
    dims = _ints(_val(env, node, 0))
    value = node.attrs.get("value")
    etype, fill = FLOAT, 0.0
    if isinstance(value, onnx.TensorProto):
        etype = value.data_type
        vals = tensor_values(value, 1)
        fill = vals[0] if vals else 0
    if dims is None:
        _out(env, node, None, etype)
        return
    n = _numel(dims) if all(d >= 0 for d in dims) else -1
    values = (fill,) * n if n >= 0 and _track(env, node, n, generator=True) else None
    _out(env, node, dims, etype, values)


def _reshape(env: Env, node: Node) -> None:
    x, target = _in(env, node, 0), _ints(_val(env, node, 1))
    etype = _type(env, node)
    if x is None or target is None:
        _out(env, node, None, etype)
        return
    allowzero = node.attrs.get("allowzero", 0)
    out = []
    infer_at = -1
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= len(x):
                raise GraphError(f"{node.label}: shape {target} copies axis {i} of {x}")
            out.append(x[i])
        elif d == -1:
            if infer_at >= 0:
                raise GraphError(f"{node.label}: shape {target} has two -1")
            infer_at = i
            out.append(1)
        elif d < 0:
            raise GraphError(f"{node.label}: shape {target} has a negative dimension")
        else:
            out.append(d)
    if max(out, default=0) > env.limits.max_dim:
        raise GraphTooLarge(
            f"{node.label}: target dimension {_big(max(out))}; the limit is {env.limits.max_dim}"
        )
    total = _numel(x)
    known = _numel(tuple(out))
    if infer_at >= 0:
        if known == 0 or total % known:
            raise GraphError(f"{node.label}: cannot reshape {x} to {target}")
        out[infer_at] = total // known
    elif known != total:
        raise GraphError(f"{node.label}: cannot reshape {x} ({total} elements) to {target}")
    _out(env, node, tuple(out), etype, _val(env, node, 0))


def _flatten(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    if x is None:
        _out(env, node, None, _type(env, node))
        return
    axis = node.attrs.get("axis", 1)
    axis = axis + len(x) if axis < 0 else axis
    if not 0 <= axis <= len(x):
        raise GraphError(f"{node.label}: axis out of range for {x}")
    _out(env, node, (_numel(x[:axis]), _numel(x[axis:])), _type(env, node), _val(env, node, 0))


def _axes(env: Env, node: Node) -> tuple[int, ...] | None:
    if "axes" in node.attrs:
        return tuple(node.attrs["axes"])  # type: ignore[arg-type]
    if len(node.inputs) > 1 and node.inputs[1]:
        return _ints(_val(env, node, 1))
    return ()


def _squeeze(env: Env, node: Node) -> None:
    x, axes = _in(env, node, 0), _axes(env, node)
    if x is None or axes is None:
        _out(env, node, None, _type(env, node))
        return
    if axes:
        drop = {_axis(a, len(x), node) for a in axes}
        out = tuple(d for i, d in enumerate(x) if i not in drop)
    else:
        out = tuple(d for d in x if d != 1)
    _out(env, node, out, _type(env, node), _val(env, node, 0))


def _unsqueeze(env: Env, node: Node) -> None:
    x, axes = _in(env, node, 0), _axes(env, node)
    if x is None or axes is None:
        _out(env, node, None, _type(env, node))
        return
    rank = len(x) + len(axes)
    put = {_axis(a, rank, node) for a in axes}
    it = iter(x)
    out = tuple(1 if i in put else next(it) for i in range(rank))
    _out(env, node, out, _type(env, node), _val(env, node, 0))


def _transpose(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    if x is None:
        _out(env, node, None, _type(env, node))
        return
    perm = tuple(node.attrs.get("perm", ())) or tuple(range(len(x) - 1, -1, -1))
    if sorted(perm) != list(range(len(x))):
        raise GraphError(f"{node.label}: perm {perm} does not fit rank {len(x)}")
    v = _val(env, node, 0)
    _out(env, node, tuple(x[p] for p in perm), _type(env, node), v if len(x) <= 1 else None)


def _concat(env: Env, node: Node) -> None:
    shapes = [env.shapes.get(n) if n else None for n in node.inputs]
    etype = _type(env, node)
    if not shapes or any(s is None for s in shapes):
        _out(env, node, None, etype)
        return
    rank = len(shapes[0])  # type: ignore[arg-type]
    axis = _axis(node.attrs.get("axis", 0), rank, node)
    for s in shapes:
        if len(s) != rank or any(  # type: ignore[arg-type]
            s[i] != shapes[0][i]
            for i in range(rank)
            if i != axis  # type: ignore[index]
        ):
            raise GraphError(f"{node.label}: shapes {shapes} do not concatenate on axis {axis}")
    out = list(shapes[0])  # type: ignore[arg-type]
    out[axis] = sum(s[axis] for s in shapes)  # type: ignore[index]
    values = None
    vals = [env.values.get(n) for n in node.inputs]
    if rank == 1 and all(v is not None for v in vals):
        n = out[0]
        _track(env, node, n)
        values = tuple(x for v in vals for x in v)  # type: ignore[union-attr]
    _out(env, node, tuple(out), etype, values)


def _split(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = _type(env, node)
    n_out = len(node.outputs)
    if x is None:
        for i in range(n_out):
            _out(env, node, None, etype, i=i)
        return
    axis = _axis(node.attrs.get("axis", 0), len(x), node)
    split = node.attrs.get("split")
    if split is None and len(node.inputs) > 1 and node.inputs[1]:
        split = _ints(_val(env, node, 1))
        if split is None:
            for i in range(n_out):
                _out(env, node, None, etype, i=i)
            return
    if split is None:
        parts = node.attrs.get("num_outputs", n_out)
        if not isinstance(parts, int) or parts < 1:
            raise GraphError(f"{node.label}: bad num_outputs {parts}")
        chunk = -(-x[axis] // parts)
        split = tuple(min(chunk, max(x[axis] - chunk * i, 0)) for i in range(parts))
    split = tuple(split)
    if len(split) != n_out or sum(split) != x[axis] or any(s < 0 for s in split):
        raise GraphError(f"{node.label}: split {split} does not fit axis {axis} of {x}")
    for i, s in enumerate(split):
        out = list(x)
        out[axis] = s
        _out(env, node, tuple(out), etype, i=i)


def _slice(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = _type(env, node)
    if node.op == "Slice" and env.opset >= 10:
        starts, ends = _ints(_val(env, node, 1)), _ints(_val(env, node, 2))
        axes = _ints(_val(env, node, 3)) if len(node.inputs) > 3 and node.inputs[3] else ()
        steps = _ints(_val(env, node, 4)) if len(node.inputs) > 4 and node.inputs[4] else ()
    else:
        starts, ends = node.attrs.get("starts"), node.attrs.get("ends")
        axes, steps = node.attrs.get("axes", ()), ()
    if x is None or starts is None or ends is None or axes is None or steps is None:
        _out(env, node, None, etype)
        return
    if len(starts) != len(ends):
        raise GraphError(f"{node.label}: starts {starts} and ends {ends} differ in length")
    axes = tuple(axes) or tuple(range(len(starts)))
    steps = tuple(steps) or (1,) * len(starts)
    out = list(x)
    ranges = [range(d) for d in x]
    for a, s, e, st in zip(axes, starts, ends, steps, strict=False):
        a = _axis(a, len(x), node)
        if st == 0:
            raise GraphError(f"{node.label}: step 0")
        ranges[a] = range(x[a])[slice(s, e, st)]
        out[a] = len(ranges[a])
    values = None
    v = _val(env, node, 0)
    if v is not None and len(x) == 1:
        values = tuple(v[i] for i in ranges[0])
    _out(env, node, tuple(out), etype, values)


def _gather(env: Env, node: Node) -> None:
    x, idx = _in(env, node, 0), _in(env, node, 1)
    etype = _type(env, node)
    if x is None or idx is None or not x:
        _out(env, node, None, etype)
        return
    axis = _axis(node.attrs.get("axis", 0), len(x), node)
    out = (*x[:axis], *idx, *x[axis + 1 :])
    values = None
    v, iv = _val(env, node, 0), _ints(_val(env, node, 1))
    if v is not None and iv is not None and len(x) == 1:
        try:
            values = tuple(v[i] for i in iv)
        except IndexError as exc:
            raise GraphError(f"{node.label}: index out of range") from exc
        _track(env, node, len(values))
    _out(env, node, out, etype, values)


def _expand(env: Env, node: Node) -> None:
    x, target = _in(env, node, 0), _ints(_val(env, node, 1))
    if x is None or target is None:
        _out(env, node, None, _type(env, node))
        return
    if any(d < 0 for d in target):
        raise GraphError(f"{node.label}: negative shape {target}")
    out = _broadcast([x, target], node)
    values = None
    v = _val(env, node, 0)
    n = _numel(out)
    if v is not None and len(v) == 1 and _track(env, node, n, generator=True):
        values = v * n
    _out(env, node, out, _type(env, node), values)


def _tile(env: Env, node: Node) -> None:
    x, reps = _in(env, node, 0), _ints(_val(env, node, 1))
    if x is None or reps is None or len(reps) != len(x):
        _out(env, node, None, _type(env, node))
        return
    if any(r < 0 for r in reps):
        raise GraphError(f"{node.label}: negative repeats {reps}")
    out = tuple(d * r for d, r in zip(x, reps, strict=True))
    values = None
    v = _val(env, node, 0)
    if v is not None and len(x) == 1:
        _track(env, node, out[0])
        values = v * reps[0]
    _out(env, node, out, _type(env, node), values)


def _range(env: Env, node: Node) -> None:
    vals = [_val(env, node, i) for i in range(3)]
    etype = _type(env, node)
    if any(v is None or len(v) != 1 for v in vals):
        _out(env, node, None, etype)
        return
    start, limit, delta = (v[0] for v in vals)  # type: ignore[index]
    if delta == 0:
        raise GraphError(f"{node.label}: delta 0")
    n = max(math.ceil((limit - start) / delta), 0)
    if n > env.limits.max_dim:
        raise GraphTooLarge(f"{node.label}: {n} elements; the limit is {env.limits.max_dim}")
    values = None
    if _track(env, node, n, generator=True):
        values = tuple(start + i * delta for i in range(n))
    _out(env, node, (n,), etype, values)


def _pad(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    pads = node.attrs.get("pads") if env.opset < 11 else _ints(_val(env, node, 1))
    if x is None or pads is None:
        _out(env, node, None, _type(env, node))
        return
    axes = _ints(_val(env, node, 3)) if len(node.inputs) > 3 and node.inputs[3] else None
    axes = tuple(_axis(a, len(x), node) for a in axes) if axes else tuple(range(len(x)))
    if len(pads) != 2 * len(axes):
        raise GraphError(f"{node.label}: pads {pads} do not fit rank {len(x)}")
    out = list(x)
    for j, a in enumerate(axes):
        out[a] = x[a] + pads[j] + pads[j + len(axes)]
        if out[a] < 0:
            raise GraphError(f"{node.label}: pads {pads} make axis {a} negative")
    _out(env, node, tuple(out), _type(env, node))


def _resize(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = _type(env, node)
    if x is None:
        _out(env, node, None, etype)
        return
    if node.op == "Upsample":
        scales = node.attrs.get("scales") or _val(env, node, 1)
        sizes = None
    else:
        scales = _val(env, node, 2) if len(node.inputs) > 2 and node.inputs[2] else None
        sizes = _ints(_val(env, node, 3)) if len(node.inputs) > 3 and node.inputs[3] else None
        if "axes" in node.attrs:
            _out(env, node, None, etype)
            return
    if sizes and len(sizes) == len(x):
        _out(env, node, tuple(sizes), etype)
    elif scales and len(scales) == len(x):
        if any(not math.isfinite(s) or s < 0 for s in scales):
            raise GraphError(f"{node.label}: bad scales {scales}")
        _out(env, node, tuple(math.floor(d * s) for d, s in zip(x, scales, strict=True)), etype)
    else:
        _out(env, node, None, etype)


def _reduce(env: Env, node: Node) -> None:
    x = _in(env, node, 0)
    etype = INT64 if node.op in ("ArgMax", "ArgMin") else _type(env, node)
    if x is None:
        _out(env, node, None, etype)
        return
    keep = node.attrs.get("keepdims", 1)
    if node.op in ("ArgMax", "ArgMin"):
        axes: tuple[int, ...] | None = (node.attrs.get("axis", 0),)
    else:
        axes = _axes(env, node)
    if axes is None:
        _out(env, node, None, etype)
        return
    if not axes:
        if node.attrs.get("noop_with_empty_axes", 0):
            _out(env, node, x, etype)
            return
        axes = tuple(range(len(x)))
    drop = {_axis(a, len(x), node) for a in axes}
    out = tuple(1 if i in drop else d for i, d in enumerate(x) if keep or i not in drop)
    values = None
    v = _val(env, node, 0)
    if v is not None and len(x) == 1 and node.op in ("ReduceProd", "ReduceSum"):
        values = (math.prod(v),) if node.op == "ReduceProd" else (sum(v),)
    _out(env, node, out, etype, values)


def _compare(env: Env, node: Node) -> None:
    fn = _COMPARE[node.op]
    _binary(fn, BOOL)(env, node)


_COMPARE: dict[str, Callable] = {
    "Equal": lambda a, b: a == b,
    "Less": lambda a, b: a < b,
    "Greater": lambda a, b: a > b,
    "LessOrEqual": lambda a, b: a <= b,
    "GreaterOrEqual": lambda a, b: a >= b,
}

_SAME_SHAPE = """Relu LeakyRelu PRelu Elu Celu Selu Gelu Erf Sigmoid Tanh HardSigmoid HardSwish
Softplus Softsign Softmax LogSoftmax Exp Log Sqrt Reciprocal Floor Ceil Round Sign Clip Not
IsNaN IsInf Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh ThresholdedRelu Shrink
Hardmax CumSum Trilu LRN Mish BitwiseNot""".split()  # noqa: SIM905

SHAPE_FNS: dict[str, Callable[[Env, Node], None]] = {op: _same for op in _SAME_SHAPE}
SHAPE_FNS.update(
    {
        "Neg": _unary_value(lambda a: -a),
        "Abs": _unary_value(abs),
        "Identity": _identity,
        "Dropout": _dropout,
        "Cast": _cast,
        "Add": _binary(lambda a, b: a + b),
        "Sub": _binary(lambda a, b: a - b),
        "Mul": _binary(lambda a, b: a * b),
        "Div": _binary(_div),
        "Mod": _mod,
        "Pow": _binary(None),
        "Max": _binary(max),
        "Min": _binary(min),
        "Sum": _binary(None),
        "Mean": _binary(None),
        "And": _binary(None, BOOL),
        "Or": _binary(None, BOOL),
        "Xor": _binary(None, BOOL),
        "Where": _where,
        "Equal": _compare,
        "Less": _compare,
        "Greater": _compare,
        "LessOrEqual": _compare,
        "GreaterOrEqual": _compare,
        "MatMul": _matmul,
        "Gemm": _gemm,
        "Conv": _conv,
        "ConvTranspose": _conv_transpose,
        "MaxPool": _pool,
        "AveragePool": _pool,
        "LpPool": _pool,
        "GlobalAveragePool": _global_pool,
        "GlobalMaxPool": _global_pool,
        "GlobalLpPool": _global_pool,
        "GRU": _recurrent,
        "LSTM": _recurrent,
        "RNN": _recurrent,
        "BatchNormalization": _norm,
        "LayerNormalization": _norm,
        "InstanceNormalization": _norm,
        "GroupNormalization": _norm,
        "Shape": _shape,
        "Size": _size,
        "Constant": _constant,
        "ConstantOfShape": _constant_of_shape,
        "Reshape": _reshape,
        "Flatten": _flatten,
        "Squeeze": _squeeze,
        "Unsqueeze": _unsqueeze,
        "Transpose": _transpose,
        "Concat": _concat,
        "Split": _split,
        "Slice": _slice,
        "Gather": _gather,
        "Expand": _expand,
        "Tile": _tile,
        "Range": _range,
        "Pad": _pad,
        "Resize": _resize,
        "Upsample": _resize,
        "ReduceMean": _reduce,
        "ReduceSum": _reduce,
        "ReduceMax": _reduce,
        "ReduceMin": _reduce,
        "ReduceProd": _reduce,
        "ReduceL1": _reduce,
        "ReduceL2": _reduce,
        "ReduceLogSumExp": _reduce,
        "ReduceSumSquare": _reduce,
        "ArgMax": _reduce,
        "ArgMin": _reduce,
    }
)


def infer_node(env: Env, node: Node) -> bool:
    """Infer ``node``'s outputs; False when the op has no shape function here."""
    if node.domain not in ("", "ai.onnx"):
        return False
    fn = SHAPE_FNS.get(node.op)
    if fn is None:
        return False
    try:
        fn(env, node)
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        # An odd but possibly valid node: leave it to onnx's inference (the caller's fallback).
        return False
    return True
