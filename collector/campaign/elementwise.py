"""``python -m collector.campaign.elementwise``: what an op no single-layer run measured costs
per byte, against the kernel-1 MaxPool that such ops are priced on.

A layer-sum predictor prices an op its data never measured (ReLU, BatchNorm, Add, Softmax...)
per activation byte moved, at the energy per byte of the measured op nearest to an elementwise
one: a MaxPool of kernel 1 and stride 1 (it reads each element once and writes it once). That
is only as good as the two ops' speeds are alike. This experiment measures both on one machine,
in the single-layer protocol of Getzner et al. (one module, eval mode, ``torch.no_grad``, a
fixed random input, as many forward passes as fit in a window), on the same activation shapes,
interleaved: each round visits the shapes in a shuffled order and, per shape, every op, the
reference MaxPool and an ``nn.Identity`` control (the loop and one module call) in a shuffled
order. Each row keeps the bytes the graph profiler counts for the op (input + output
activations of its one costed node), so that a ratio computed from the rows is in the
predictor's own units.

Energy is read by a :class:`~collector.meters.cputime.CpuTimeMeter` (CPU seconds x one core's
power: an ESTIMATE, source ``estimate-cpu-time``; torch pinned to one thread). A ratio of two
such readings is a ratio of CPU times: the core's assumed power cancels. Rows are appended and
flushed one window at a time; a rerun with the same ``--out`` skips the windows already there.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from collector.campaign.windows import Reading, WindowTable, add_window_options, read_window
from collector.meters.base import EnergyMeter
from collector.meters.cputime import pin_torch_threads
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_nodes
from joulecast.weightless import export_weightless

log = logging.getLogger(__name__)

REFERENCE = "MaxPool-k1"
"""The item every op is compared with: what the fallback price is measured on."""
CONTROL = "Identity"
ONNX_OP = {REFERENCE: "MaxPool"}
"""The ONNX op of an item whose name is not its op."""
DEFAULT_SHAPES = ((1, 64, 56, 56), (8, 64, 56, 56), (8, 128, 56, 56), (16, 64, 112, 112))
"""Activation shapes (N, C, H, W) from 0.8 to 51 MB, the sizes of a VGG's feature maps."""


class _Add(nn.Module):
    """A residual join: two different activations added (the input and its flipped copy, made
    once, so that the loop adds two tensors as a network's Add does)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x.transpose(-1, -2)


class _Mul(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x.transpose(-1, -2)


def _ops(channels: int) -> dict[str, nn.Module]:
    """The measured items of one shape: name -> module (eval mode)."""
    return {
        "Relu": nn.ReLU(),
        "Sigmoid": nn.Sigmoid(),
        "Tanh": nn.Tanh(),
        "Add": _Add(),
        "Mul": _Mul(),
        "BatchNormalization": nn.BatchNorm2d(channels),
        "AveragePool": nn.AvgPool2d(2, 2),
        "GlobalAveragePool": nn.AdaptiveAvgPool2d(1),
        "Softmax": nn.Softmax(dim=1),
        REFERENCE: nn.MaxPool2d(1, 1),
        CONTROL: nn.Identity(),
    }


@dataclass(frozen=True)
class Item:
    """One window's work: ``module`` run forward on a fixed input of ``shape``."""

    name: str
    onnx_op: str
    shape: tuple[int, ...]
    module: nn.Module
    bytes_moved: int

    @property
    def shape_key(self) -> str:
        return "x".join(map(str, self.shape))

    @property
    def group(self) -> str:
        return self.shape_key


def profiled_bytes(module: nn.Module, shape: tuple[int, ...], op: str) -> int:
    """Input + output activation bytes, over the whole batch, of the ``op`` node of ``module``
    exported on ``shape``: the bytes a layer-sum predictor prices. (The Transpose that makes
    the second operand of Add and Mul is a view in torch, so the op's bytes are the window's.)"""
    example = torch.zeros((1, *shape[1:]))
    nodes = [n for n in profile_nodes(export_weightless(module, example)) if n.op_type == op]
    if len(nodes) != 1:
        raise InvalidArgument(f"{type(module).__name__} does not export to one {op} node")
    return (nodes[0].input_bytes + nodes[0].output_bytes) * shape[0]


def plan(shapes: Sequence[tuple[int, ...]]) -> list[list[Item]]:
    """One group per shape: every op, the reference and the control."""
    groups: list[list[Item]] = []
    for shape in shapes:
        group = []
        for name, module in _ops(shape[1]).items():
            module.eval()
            op = ONNX_OP.get(name, name)
            moved = 0 if name == CONTROL else profiled_bytes(module, shape, op)
            group.append(Item(name, op, tuple(shape), module, moved))
        groups.append(group)
    return groups


@dataclass(frozen=True)
class WindowRow:
    """One measured window of one item."""

    timestamp_utc: str
    round: int
    shape: str
    item: str
    onnx_op: str
    bytes_moved: int
    reading: Reading


def measure(item: Item, meter: EnergyMeter, window_s: float, round_no: int) -> WindowRow:
    """One window of ``item`` on a fresh random input, after a short unmeasured warm-up."""
    key = f"{item.shape_key}/{item.name}/{round_no}"
    reading = read_window(item.module, item.shape, meter, key, window_s)
    return WindowRow(
        timestamp_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        round=round_no,
        shape=item.shape_key,
        item=item.name,
        onnx_op=item.onnx_op,
        bytes_moved=item.bytes_moved,
        reading=reading,
    )


def _describe(item: Item, row: WindowRow) -> str:
    r = row.reading
    return f"{item.shape_key} {item.name}: {r.summary()} (load {r.loadavg_1m:.1f})"


TABLE = WindowTable(WindowRow, "shape", measure, _describe, 0.15, 1)
COLUMNS = TABLE.columns
done_windows = TABLE.done_windows
run = TABLE.run


def _shapes(text: str) -> tuple[tuple[int, ...], ...]:
    shapes = tuple(tuple(int(v) for v in s.split("x")) for s in text.split(",") if s)
    if any(len(s) != 4 or min(s) < 1 for s in shapes):
        raise InvalidArgument(f"--shapes wants NxCxHxW items, got {text!r}")
    return shapes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m collector.campaign.elementwise", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("runs/elementwise.csv"), help="CSV (appended)")
    p.add_argument(
        "--shapes",
        default=",".join("x".join(map(str, s)) for s in DEFAULT_SHAPES),
        help="comma list of NxCxHxW activation shapes",
    )
    add_window_options(p, rounds=3, window_s=0.5)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pin_torch_threads()
    try:
        groups = plan(_shapes(args.shapes))
    except InvalidArgument as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return TABLE.run_from_args(args, groups)


if __name__ == "__main__":
    sys.exit(main())
