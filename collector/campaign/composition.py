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
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch import nn

from collector.campaign.stacks import ARCHS, LayerSpec, StackSpec, build, layers_of
from collector.meters.base import EnergyMeter
from collector.meters.cputime import CpuTimeMeter, pin_torch_threads
from joulecast.errors import InvalidArgument

log = logging.getLogger(__name__)

DEFAULT_WIDTHS = (8, 32)
DEFAULT_IMAGE_SIZES = (32, 64)
DEFAULT_BATCH_SIZES = (1, 8)
WARMUP_S = 0.05
"""Wall seconds of unmeasured passes before each window (first-call allocations, oneDNN's
primitive cache): a 30 s Getzner window amortises them, a sub-second one would not."""


@dataclass(frozen=True)
class WindowRow:
    """One measured window: ``passes`` forward passes of one item (a network, one of its
    layers, or the identity control). Energy in joules, times in seconds."""

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
    passes: int
    cpu_s: float
    wall_s: float
    energy_j: float
    energy_per_pass_j: float
    energy_source: str
    core_power_w: float
    others_busy_cores: float | None
    loadavg_1m: float
    cpu_model: str
    torch_version: str
    malloc_env: str


COLUMNS = tuple(f.name for f in fields(WindowRow))


@dataclass(frozen=True)
class Item:
    """What one window runs: a module on a fixed input shape."""

    network: StackSpec
    kind: str
    name: str
    op: str
    position: int
    module: nn.Module
    input_shape: tuple[int, ...]
    macs: int
    elements_in: int


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
                    group = [
                        Item(spec, "network", spec.name, "Sequential", -1, net, shape, total, 0)
                    ]
                    group += [
                        Item(spec, "layer", f"L{s.position:02d}-{s.key}", s.op, s.position, s.module, s.input_shape,
                             s.macs, s.elements_in)
                        for s in layers
                    ]  # fmt: skip
                    group.append(Item(spec, "control", "Identity", "Identity", -1,
                                      nn.Identity(), shape, 0, 0))  # fmt: skip
                    groups.append(group)
    return groups


def done_windows(path: Path) -> set[tuple[int, str, str]]:
    """(round, network, item) of every window already in the CSV at ``path``."""
    if not path.is_file():
        return set()
    with path.open(newline="") as handle:
        return {(int(r["round"]), r["network"], r["item"]) for r in csv.DictReader(handle)}


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _passes(module: nn.Module, data: torch.Tensor, seconds: float) -> int:
    """Forward passes until ``seconds`` of wall time have passed (Getzner's loop: a wall-clock
    deadline read with ``perf_counter``, whose cost per pass is tens of nanoseconds)."""
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        module(data)
        count += 1
    return count


def measure(item: Item, meter: EnergyMeter, window_s: float, round_no: int) -> WindowRow:
    """One window of ``item``: fresh random input, warm-up, then the measured loop."""
    data = torch.randn(item.input_shape)
    with torch.no_grad():
        _passes(item.module, data, WARMUP_S)
        key = f"{item.network.name}/{item.name}/{round_no}"
        meter.begin_window(key)
        passes = _passes(item.module, data, window_s)
        measured = meter.end_window(key)
    core_w = float(getattr(meter, "core_power_w", math.nan))
    if measured.cpu_s is None:
        raise InvalidArgument(f"the {meter.name} meter reports no CPU seconds: use cpu-time")
    spec = item.network
    return WindowRow(
        timestamp_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        round=round_no,
        network=spec.name,
        kind=item.kind,
        item=item.name,
        op=item.op,
        position=item.position,
        arch=spec.arch,
        width=spec.width,
        image_size=spec.image_size,
        batch_size=spec.batch_size,
        macs=item.macs,
        elements_in=item.elements_in,
        passes=passes,
        cpu_s=measured.cpu_s,
        wall_s=measured.duration_s,
        energy_j=measured.energy_j,
        energy_per_pass_j=measured.energy_j / max(passes, 1),
        energy_source=measured.energy_source,
        core_power_w=core_w,
        others_busy_cores=measured.others_busy_cores,
        loadavg_1m=os.getloadavg()[0],
        cpu_model=getattr(meter, "cpu_model", ""),
        torch_version=torch.__version__,
        malloc_env=" ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if "MALLOC" in k),
    )


def schedule(groups: list[list[Item]], rounds: int, seed: int) -> Iterator[tuple[int, Item]]:
    """(round, item) in measuring order: per round, networks shuffled, and inside each network
    its own items shuffled (the network sits among its layers, never far from them in time)."""
    for round_no in range(rounds):
        rng = random.Random(seed * 1000 + round_no)
        order = list(groups)
        rng.shuffle(order)
        for group in order:
            items = list(group)
            rng.shuffle(items)
            for item in items:
                yield round_no, item


def run(
    out: Path,
    groups: list[list[Item]],
    meter: EnergyMeter,
    rounds: int,
    window_s: float,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> int:
    """Measure every window not yet in ``out``; returns the number measured now."""
    done = done_windows(out)
    todo = [
        (r, i) for r, i in schedule(groups, rounds, seed) if (r, i.network.name, i.name) not in done
    ]
    total, start = len(todo), time.monotonic()
    say(f"{len(done)} windows already in {out}; {total} to measure (~{total * (window_s + WARMUP_S + 0.05) / 60:.0f} min)")  # fmt: skip
    new_file = not out.is_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        for n, (round_no, item) in enumerate(todo, 1):
            row = measure(item, meter, window_s, round_no)
            writer.writerow(asdict(row))
            handle.flush()
            elapsed = time.monotonic() - start
            say(
                f"[{n}/{total}] r{round_no} {item.network.name} {item.kind} {item.name}: "
                f"{row.energy_per_pass_j * 1e6:.1f} µJ/pass x {row.passes} "
                f"(load {row.loadavg_1m:.1f}, others {row.others_busy_cores}) "
                f"{elapsed:.0f} s, eta {elapsed / n * (total - n):.0f} s"
            )
    return total


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
    p.add_argument("--rounds", type=int, default=3, help="repeats of every window, interleaved")
    p.add_argument("--window-s", type=float, default=0.7, help="wall seconds of one window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--core-watts", type=float, help="per-core power (default: CodeCarbon's)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pin_torch_threads()
    archs = tuple(a for a in args.archs.split(",") if a)
    groups = plan(archs, _ints(args.widths), _ints(args.image_sizes), _ints(args.batch_sizes))
    meter = CpuTimeMeter(core_power_w=args.core_watts)
    run(args.out, groups, meter, args.rounds, args.window_s, args.seed,
        say=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
