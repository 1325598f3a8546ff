"""Per-operator FLOP rules in DeepSpeed's flops-profiler convention (see RULES.md).

Each rule takes a node and the shapes around it and returns ``(flops, kind)`` for the whole
batch; the profiler divides by the batch. Kinds: ``conv``, ``dense``, ``recurrent``, ``other``.
A rule returns ``None`` when a shape it needs is unknown.
"""

from __future__ import annotations

from collections.abc import Callable

from joulecast.graph.ir import Node
from joulecast.graph.shapes import Shape, ShapeTable, numel

Rule = Callable[[Node, ShapeTable], "tuple[int, str] | None"]

RECURRENT_OPS = frozenset({"GRU", "LSTM", "RNN"})
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
ATTENTION_OPS = frozenset({"Attention", "MultiHeadAttention", "GroupQueryAttention"})

ZERO_OPS = frozenset(
    """Add Sub Mul Div Pow Sqrt Reciprocal Neg Abs Exp Log Floor Ceil Round Sign Mod Min Max
    Sum Mean Sigmoid Tanh HardSigmoid HardSwish Softplus Softsign LogSoftmax Dropout Identity
    Shape Size Reshape Flatten Squeeze Unsqueeze Transpose Concat Split Slice Gather GatherND
    GatherElements Scatter ScatterND ScatterElements Expand Tile Pad Cast CastLike Constant
    ConstantOfShape Range Where Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Xor
    ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSumExp
    ReduceSumSquare ArgMax ArgMin TopK NonZero Trilu CumSum IsNaN IsInf OneHot DepthToSpace
    SpaceToDepth Compress SequenceConstruct SequenceAt SplitToSequence ConcatFromSequence
    Optional OptionalGetElement OptionalHasElement EyeLike Shrink BitShift NonMaxSuppression
    Unique Det""".split()  # noqa: SIM905
)
"""Ops DeepSpeed counts as 0 (elementwise arithmetic via operators, shape and index ops)."""


def _attr(node: Node, name: str, default: object = None) -> object:
    return node.attrs.get(name, default)


def _input(node: Node, i: int) -> str:
    return node.inputs[i] if len(node.inputs) > i else ""


def _elements_of_input(node: Node, t: ShapeTable) -> int | None:
    s = t.shape(_input(node, 0))
    return None if s is None else numel(s)


def _per_element(factor: int) -> Rule:
    def rule(node: Node, t: ShapeTable) -> tuple[int, str] | None:
        ins = node.inputs  # _elements_of_input, inlined: one call per node of most graphs
        s = t.shapes.get(ins[0]) if ins and ins[0] else None
        return None if s is None else (factor * numel(s), "other")

    return rule


def _matmul_shape(a: Shape, b: Shape) -> tuple[int, int, int, int]:
    """(batch, M, K, N) of numpy-style matmul, broadcasting leading dims."""
    a2 = (1, *a) if len(a) == 1 else a
    b2 = (*b, 1) if len(b) == 1 else b
    ba, bb = a2[:-2], b2[:-2]
    n = max(len(ba), len(bb))
    ba = (1,) * (n - len(ba)) + tuple(ba)
    bb = (1,) * (n - len(bb)) + tuple(bb)
    batch = 1
    for x, y in zip(ba, bb, strict=True):
        batch *= max(x, y)
    return batch, a2[-2], a2[-1], b2[-1]


def _matmul(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    a, b = t.shape(_input(node, 0)), t.shape(_input(node, 1))
    if a is None or b is None or not a or not b:
        return None
    if len(a) == 2 and len(b) == 2:  # (M, K) x (K, N): no batch to broadcast
        return 2 * a[0] * a[1] * b[1], "dense"
    batch, m, k, n = _matmul_shape(a, b)
    return 2 * batch * m * k * n, "dense"


def _gemm(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    a, b = t.shape(_input(node, 0)), t.shape(_input(node, 1))
    if a is None or b is None or len(a) != 2 or len(b) != 2:
        return None
    m, k = (a[1], a[0]) if _attr(node, "transA", 0) else a
    n = b[0] if _attr(node, "transB", 0) else b[1]
    return 2 * m * k * n, "dense"


def _conv(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    w, y = t.shape(_input(node, 1)), t.shape(node.outputs[0])
    if w is None or y is None or len(y) < 2:
        return None
    positions = y[0] * numel(y[2:])
    flops = 2 * numel(w) * positions  # numel(W) = C_out * C_in/groups * prod(kernel)
    if _input(node, 2):
        flops += y[1] * positions
    return flops, "conv"


def _conv_transpose(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    x, w, y = t.shape(_input(node, 0)), t.shape(_input(node, 1)), t.shape(node.outputs[0])
    if x is None or w is None or y is None or len(x) < 2:
        return None
    # DeepSpeed: MACs = prod(kernel) * C_in * C_out/groups per *input* position.
    flops = 2 * numel(w) * x[0] * numel(x[2:])
    if _input(node, 2):
        flops += y[1] * y[0] * numel(y[2:])
    return flops, "conv"


_RNN_GATES = {"GRU": 3, "LSTM": 4, "RNN": 1}


def recurrent_dims(node: Node, t: ShapeTable) -> tuple[int, int, int, int] | None:
    """(steps, batch, input size, hidden size) of a GRU/LSTM/RNN node."""
    x = t.shape(_input(node, 0))
    hidden = _attr(node, "hidden_size")
    w = t.shape(_input(node, 1))
    if x is None or len(x) != 3:
        return None
    steps, batch = (x[1], x[0]) if _attr(node, "layout", 0) else (x[0], x[1])
    size_in = w[2] if w is not None and len(w) == 3 else x[2]
    if hidden is None:
        gates = _RNN_GATES[node.op]
        if w is None or len(w) != 3:
            return None
        hidden = w[1] // gates
    return steps, batch, size_in, int(hidden)


def recurrent_directions(node: Node) -> int:
    return 2 if _attr(node, "direction", b"forward") in (b"bidirectional", "bidirectional") else 1


def recurrent_step_flops(op: str, size_in: int, hidden: int, bias: bool) -> int:
    """DeepSpeed's ``_rnn_flops`` for one layer, direction, step and sample."""
    i, h = size_in, hidden
    if op == "GRU":
        flops = 2 * 3 * h * i - 3 * h + 2 * 3 * h * h - 3 * h + h + 3 * h + 3 * h
        return flops + (6 * h if bias else 0)
    if op == "LSTM":
        flops = 2 * 4 * h * i - 4 * h + 2 * 4 * h * h - 4 * h + 4 * h + 3 * h + 3 * h
        return flops + (8 * h if bias else 0)
    flops = 2 * h * i - h + 2 * h * h - h + h
    return flops + (2 * h if bias else 0)


def _recurrent(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    dims = recurrent_dims(node, t)
    if dims is None:
        return None
    steps, batch, size_in, hidden = dims
    per_step = recurrent_step_flops(node.op, size_in, hidden, bool(_input(node, 3)))
    return per_step * steps * batch * recurrent_directions(node), "recurrent"


def _resize(node: Node, t: ShapeTable) -> tuple[int, str] | None:
    y = t.shape(node.outputs[0])
    return None if y is None else (numel(y), "other")


RULES: dict[str, Rule] = {
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "GRU": _recurrent,
    "LSTM": _recurrent,
    "RNN": _recurrent,
    "Relu": _per_element(1),
    "LeakyRelu": _per_element(1),
    "PRelu": _per_element(1),
    "Elu": _per_element(1),
    "Celu": _per_element(1),
    "Selu": _per_element(1),
    "Clip": _per_element(1),  # ReLU6
    "Gelu": _per_element(1),
    "Erf": _per_element(1),  # the legacy exporter's GELU: x * 0.5 * (1 + erf(x / sqrt 2))
    "Softmax": _per_element(1),
    "MaxPool": _per_element(1),
    "AveragePool": _per_element(1),
    "LpPool": _per_element(1),
    "GlobalAveragePool": _per_element(1),
    "GlobalMaxPool": _per_element(1),
    "GlobalLpPool": _per_element(1),
    "BatchNormalization": _per_element(2),
    "LayerNormalization": _per_element(5),
    "InstanceNormalization": _per_element(5),
    "GroupNormalization": _per_element(5),
    "Resize": _resize,
    "Upsample": _resize,
}


def silu_flops(node: Node, t: ShapeTable, producers: dict[str, Node]) -> int:
    """x * sigmoid(x) (SiLU/Swish as exported) counts one FLOP per element, like F.silu."""
    if node.op != "Mul" or len(node.inputs) != 2:
        return 0
    for a, b in ((node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])):
        p = producers.get(b)
        if p is not None and p.op == "Sigmoid" and p.inputs and p.inputs[0] == a:
            s = t.shape(a)
            return 0 if s is None else numel(s)
    return 0


_MASK_OPS = frozenset({"Add", "Where", "Cast"})


def is_sdpa_softmax(node: Node, producers: dict[str, Node]) -> bool:
    """Whether a Softmax is the inside of an exported ``scaled_dot_product_attention``.

    Both exporters write sdpa as MatMul(Mul(q, s), Mul(k^T, s)) -> [mask Add] -> Softmax ->
    MatMul; DeepSpeed counts sdpa as its two matmuls only (``_attn_flops_compute``), so this
    Softmax is 0 FLOPs. Hand-written attention scales the product (or only q) and its
    ``F.softmax`` is counted, as DeepSpeed does.
    """
    if not node.inputs:
        return False
    p = producers.get(node.inputs[0])
    for _ in range(3):
        if p is None or p.op not in _MASK_OPS:
            break
        p = producers.get(p.inputs[0]) if p.inputs else None
    if p is None or p.op != "MatMul" or len(p.inputs) != 2:
        return False
    a, b = (producers.get(n) for n in p.inputs)
    return a is not None and b is not None and a.op == "Mul" and b.op == "Mul"
