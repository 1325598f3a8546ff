"""``python -m collector.campaign.composition``: whole networks against the sum of their layers.

Does a network cost the sum of its layers measured alone? Getzner et al. measured single layers
(one module run forward, under ``torch.no_grad``, in eval mode, on one random batch, as many
times as fit in a window; energy per forward pass = window energy / passes). This experiment
runs that protocol on the layers of VGG- and AlexNet-shaped stacks (:mod:`stacks`), each on the
shape it sees in its stack, and on the stacks themselves, with the same loop, in the same
process, interleaved: each round visits the networks in a shuffled order and, per network, the
network, its layers and a ``nn.Identity`` control (what the loop and one module call cost) in a
shuffled order, so that the machine's drift hits both sides alike.

Energy is read by a :class:`~collector.meters.cputime.CpuTimeMeter` (the process's CPU seconds
x one core's power: an ESTIMATE, source ``estimate-cpu-time``; torch pinned to one thread).
Every window is one CSV row, appended at once and flushed: a rerun with the same ``--out``
skips the windows already there (resumable). Each row keeps the load average and the cores
other work kept busy.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from torch import nn

from collector.campaign.stacks import ARCHS, LayerSpec, StackSpec, build, layers_of
from collector.campaign.windows import (
    WARMUP_S,
    Reading,
    WindowTable,
    add_window_options,
    read_window,
)
from collector.meters.base import EnergyMeter
from collector.meters.cputime import pin_torch_threads

log = logging.getLogger(__name__)

DEFAULT_WIDTHS = (8, 32)
DEFAULT_IMAGE_SIZES = (32, 64)
DEFAULT_BATCH_SIZES = (1, 8)


@dataclass(frozen=True)
class WindowRow:
    """One measured window: ``reading.passes`` forward passes of one item (a network, one of
    its layers, or the identity control)."""

    timestamp_utc: str
    round: int
    network: str
    kind: str
    item: str
    op: str
    position: int
    arch: str
    width: int
    image_size: int
    batch_size: int
    macs: int
    elements_in: int
    reading: Reading
    malloc_env: str


@dataclass(frozen=True)
class Item:
    """What one window runs: ``layer`` of ``network`` (the network itself, one of its layers,
    or the identity control, each as a layer on its input shape)."""

    network: StackSpec
    kind: str
    name: str
    layer: LayerSpec

    @property
    def group(self) -> str:
        return self.network.name


def plan(
    archs: Sequence[str],
    widths: Sequence[int],
    image_sizes: Sequence[int],
    batch_sizes: Sequence[int],
) -> list[list[Item]]:
    """One group per network: the network, each of its layers, the identity control."""
    groups: list[list[Item]] = []
    for arch in archs:
        for width in widths:
            for side in image_sizes:
                for batch in batch_sizes:
                    spec = StackSpec(arch, width, side, batch)
                    net = build(spec)
                    layers: list[LayerSpec] = layers_of(spec, net)
                    shape = layers[0].input_shape
                    total = sum(layer.macs for layer in layers)
                    whole = LayerSpec(spec.name, "Sequential", -1, net, shape, total, 0)
                    group = [Item(spec, "network", spec.name, whole)]
                    group += [Item(spec, "layer", f"L{s.position:02d}-{s.key}", s) for s in layers]
                    control = LayerSpec("Identity", "Identity", -1, nn.Identity(), shape, 0, 0)
                    group.append(Item(spec, "control", "Identity", control))
                    groups.append(group)
    return groups


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def measure(item: Item, meter: EnergyMeter, window_s: float, round_no: int) -> WindowRow:
    """One window of ``item``: fresh random input, warm-up, then the measured loop."""
    layer = item.layer
    key = f"{item.network.name}/{item.name}/{round_no}"
    reading = read_window(layer.module, layer.input_shape, meter, key, window_s)
    spec = item.network
    return WindowRow(
        timestamp_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        round=round_no,
        network=spec.name,
        kind=item.kind,
        item=item.name,
        op=layer.op,
        position=layer.position,
        arch=spec.arch,
        width=spec.width,
        image_size=spec.image_size,
        batch_size=spec.batch_size,
        macs=layer.macs,
        elements_in=layer.elements_in,
        reading=reading,
        malloc_env=" ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if "MALLOC" in k),
    )


def _describe(item: Item, row: WindowRow) -> str:
    r = row.reading
    return (
        f"{item.network.name} {item.kind} {item.name}: {r.summary()} "
        f"(load {r.loadavg_1m:.1f}, others {r.others_busy_cores})"
    )


TABLE = WindowTable(WindowRow, "network", measure, _describe, WARMUP_S + 0.05, 0)
COLUMNS = TABLE.columns
done_windows = TABLE.done_windows
run = TABLE.run


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m collector.campaign.composition", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("runs/composition.csv"), help="CSV (appended)")
    p.add_argument("--archs", default=",".join(ARCHS), help="comma list of vgg, alexnet")
    p.add_argument("--widths", default=",".join(map(str, DEFAULT_WIDTHS)))
    p.add_argument("--image-sizes", default=",".join(map(str, DEFAULT_IMAGE_SIZES)))
    p.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)))
    add_window_options(p, rounds=3, window_s=0.7)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pin_torch_threads()
    archs = tuple(a for a in args.archs.split(",") if a)
    groups = plan(archs, _ints(args.widths), _ints(args.image_sizes), _ints(args.batch_sizes))
    return TABLE.run_from_args(args, groups)


if __name__ == "__main__":
    sys.exit(main())
