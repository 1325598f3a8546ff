"""NAS-Bench-101 image classifiers rebuilt in PyTorch from a cell spec (Ying et al., 2019).

A cell is a DAG over ``n`` vertices given by an upper-triangular adjacency matrix and one label
per vertex: vertex 0 is the cell's input, vertex ``n-1`` its output, and every interior vertex
applies one op (3x3 conv-BN-ReLU, 1x1 conv-BN-ReLU or 3x3 max-pool). Inside a cell:

- the output's channels are split as evenly as possible among the interior vertices that feed
  the output (the first ones get the remainder); any other interior vertex gets the largest
  channel count among the interior vertices it feeds;
- an edge from the cell input to a vertex goes through a 1x1 conv-BN-ReLU projection to that
  vertex's channel count; an edge between interior vertices keeps the first channels of its
  source (channel counts never grow along an interior edge);
- the inputs of an interior vertex are summed; the output concatenates the interior vertices
  that feed it, plus the projected cell input when the input feeds the output directly.

The network: a 3x3 conv-BN-ReLU stem with 128 filters, 3 stacks of 3 cells, a 2x2 max-pool
(stride 2) and a doubling of channels before stacks 2 and 3, global average pooling, a dense
layer to 10 classes. Input (3, 32, 32) (CIFAR-10). Convolutions have no bias; batch norm has a
trainable scale and shift (TensorFlow's defaults in NAS-Bench-101).

Ops use the EC-NAS-Bench labels: ``-1`` input, ``-2`` output, ``0`` conv3x3, ``1`` conv1x1,
``2`` maxpool3x3 (or the NAS-Bench-101 names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from joulecast.errors import InvalidArgument

INPUT = "input"
OUTPUT = "output"
CONV3X3 = "conv3x3-bn-relu"
CONV1X1 = "conv1x1-bn-relu"
MAXPOOL3X3 = "maxpool3x3"
OPS = (CONV3X3, CONV1X1, MAXPOOL3X3)
_LABELS = {-1: INPUT, -2: OUTPUT, 0: CONV3X3, 1: CONV1X1, 2: MAXPOOL3X3}

STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)
BN_MOMENTUM = 0.003
"""PyTorch's momentum for TensorFlow's batch-norm decay of 0.997."""
BN_EPS = 1e-5
MAX_VERTICES = 7


@dataclass(frozen=True)
class CellSpec:
    """A pruned cell: ``matrix[i][j]`` is 1 when vertex i feeds vertex j (i < j)."""

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    @classmethod
    def from_lists(cls, matrix: Sequence[Sequence[int]], ops: Sequence[int | str]) -> CellSpec:
        """Validate a raw spec, translate integer op labels, and prune unused vertices."""
        n = len(matrix)
        if not 2 <= n <= MAX_VERTICES or any(len(r) != n for r in matrix):
            raise InvalidArgument(f"adjacency matrix must be square, 2-{MAX_VERTICES} vertices")
        if len(ops) != n:
            raise InvalidArgument(f"{len(ops)} ops for {n} vertices")
        names = [_LABELS.get(o, o) if isinstance(o, int) else o for o in ops]
        if names[0] != INPUT or names[-1] != OUTPUT:
            raise InvalidArgument("the first vertex must be the input and the last the output")
        for name in names[1:-1]:
            if name not in OPS:
                raise InvalidArgument(f"unknown op {name!r}; known: {', '.join(OPS)}")
        m = [[int(v) for v in row] for row in matrix]
        for i in range(n):
            for j in range(n):
                if m[i][j] not in (0, 1) or (m[i][j] and j <= i):
                    raise InvalidArgument("adjacency matrix must be 0/1 and strictly upper")
        return _prune(m, names)

    @property
    def num_vertices(self) -> int:
        return len(self.ops)


def _prune(m: list[list[int]], ops: list[str]) -> CellSpec:
    """Drop vertices that are not on a path from input to output (as NAS-Bench-101 does)."""
    n = len(ops)
    from_input = {0}
    for j in range(1, n):
        if any(m[i][j] and i in from_input for i in range(j)):
            from_input.add(j)
    to_output = {n - 1}
    for i in range(n - 2, -1, -1):
        if any(m[i][j] and j in to_output for j in range(i + 1, n)):
            to_output.add(i)
    keep = sorted(from_input & to_output)
    if n - 1 not in keep:
        raise InvalidArgument("the output is not reachable from the input")
    matrix = tuple(tuple(m[i][j] for j in keep) for i in keep)
    return CellSpec(matrix, tuple(ops[i] for i in keep))


def vertex_channels(
    in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]
) -> list[int]:
    """Channel count of every vertex of a cell (input first, output last)."""
    n = len(matrix)
    channels = [0] * n
    channels[0] = in_channels
    channels[-1] = out_channels
    if n == 2:
        return channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    share, extra = divmod(out_channels, len(feeders)) if feeders else (0, 0)
    for rank, v in enumerate(feeders):
        channels[v] = share + (1 if rank < extra else 0)
    for v in range(n - 2, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[d] for d in range(v + 1, n - 1) if matrix[v][d])
    return channels


class ConvBnRelu(nn.Sequential):
    """Convolution (no bias, 'same' padding, stride 1), batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=False),
        )


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == CONV3X3:
        return ConvBnRelu(channels, channels, 3)
    if op == CONV1X1:
        return ConvBnRelu(channels, channels, 1)
    return nn.MaxPool2d(kernel_size=3, stride=1, padding=1)


def _first_channels(x: torch.Tensor, width: int) -> torch.Tensor:
    """The first ``width`` channels of ``x`` (no op, and no graph node, when it has no more)."""
    return x if x.shape[1] == width else x[:, :width]


class Cell(nn.Module):
    """One NAS-Bench-101 cell (see the module docstring for how vertices combine)."""

    def __init__(self, spec: CellSpec, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.spec = spec
        n = spec.num_vertices
        m = spec.matrix
        self.channels = vertex_channels(in_channels, out_channels, m)
        self.ops = nn.ModuleList(
            [nn.Identity(), *(_vertex_op(spec.ops[v], self.channels[v]) for v in range(1, n - 1))]
        )
        projected = [v for v in range(1, n) if m[0][v]]
        self.projections = nn.ModuleDict(
            {str(v): ConvBnRelu(in_channels, self.channels[v], 1) for v in projected}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.spec.matrix
        n = self.spec.num_vertices
        values: list[torch.Tensor] = [x]
        for v in range(1, n - 1):
            width = self.channels[v]
            inputs = [_first_channels(values[s], width) for s in range(1, v) if m[s][v]]
            if m[0][v]:
                inputs.append(self.projections[str(v)](x))
            total = inputs[0]
            for extra in inputs[1:]:
                total = total + extra
            values.append(self.ops[v](total))
        concat = [values[v] for v in range(1, n - 1) if m[v][n - 1]]
        if not concat:
            return self.projections[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if m[0][n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


class Network(nn.Module):
    """The NAS-Bench-101 CIFAR-10 network of one cell spec: input (N, 3, 32, 32), 10 logits."""

    def __init__(self, spec: CellSpec, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(INPUT_SHAPE[0], STEM_CHANNELS, 3)]
        channels = STEM_CHANNELS
        for stack in range(NUM_STACKS):
            out = channels
            if stack > 0:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                out = channels * 2
            for _ in range(CELLS_PER_STACK):
                layers.append(Cell(spec, channels, out))
                channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def build(
    matrix: Sequence[Sequence[int]], ops: Sequence[int | str], device: str | torch.device = "cpu"
) -> Network:
    """The network of a raw cell spec (``device='meta'`` builds it without memory)."""
    spec = CellSpec.from_lists(matrix, ops)
    with torch.device(device):
        return Network(spec)


def count_params(spec: CellSpec, num_classes: int = NUM_CLASSES) -> int:
    """Trainable parameters of :class:`Network` ``(spec)`` counted without building it.

    Follows the same channel plan as the modules above (a test checks that both agree): each
    k x k conv-BN-ReLU from ``a`` to ``b`` channels holds ``k*k*a*b`` weights and ``2*b`` batch-norm
    scales and shifts; the dense layer ``c*classes + classes``.
    """

    def conv_bn(a: int, b: int, k: int) -> int:
        return k * k * a * b + 2 * b

    n = spec.num_vertices
    m = spec.matrix
    kernel = {CONV3X3: 3, CONV1X1: 1}
    total = conv_bn(INPUT_SHAPE[0], STEM_CHANNELS, 3)
    channels = STEM_CHANNELS
    for stack in range(NUM_STACKS):
        out = channels * 2 if stack > 0 else channels
        for _ in range(CELLS_PER_STACK):
            plan = vertex_channels(channels, out, m)
            for v in range(1, n - 1):
                if spec.ops[v] in kernel:
                    total += conv_bn(plan[v], plan[v], kernel[spec.ops[v]])
            total += sum(conv_bn(channels, plan[v], 1) for v in range(1, n) if m[0][v])
            channels = out
    return total + channels * num_classes + num_classes


def trainable_params(model: nn.Module) -> int:
    """Number of trainable parameters (what NAS-Bench-101 stores as ``trainable_params``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def export_onnx(model: Network) -> bytes:
    """The weightless ONNX graph of ``model`` (eval mode, input ``x`` of shape (N, 3, 32, 32))."""
    from joulecast.weightless import export_weightless

    model.eval()
    return export_weightless(model, torch.zeros(1, *INPUT_SHAPE))
