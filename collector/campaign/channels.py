"""``python -m collector.campaign.channels``: does a convolution cost its true MACs, or its
channels rounded up to whole blocks?

oneDNN, which runs PyTorch's CPU convolutions, lays channels out in blocks (16 floats on
AVX-512), so a layer of 65 channels may run as one of 80. Random single-layer configurations
rarely have channels in whole blocks; the layers of real networks (64, 128, 256...) nearly
always do, so a model fitted on the former carries their padding into its answers for the
latter. This experiment runs 3x3 convolutions with as many channels out as in, over a range of
channel counts, on one input size, in the single-layer protocol and interleaved, with the
elementwise experiment's windows (:mod:`collector.campaign.elementwise`: CPU-time meter, one
row per window, resumable). :mod:`estimator.layerwise.channels` reads the rows back.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from torch import nn

from collector.campaign.elementwise import TABLE, Item, profiled_bytes
from collector.campaign.windows import add_window_options
from collector.meters.cputime import pin_torch_threads

DEFAULT_CHANNELS = tuple(range(40, 137))
DEFAULT_SIDE = 28
DEFAULT_BATCH = 4


def plan(channels: tuple[int, ...], side: int, batch: int) -> list[list[Item]]:
    """One group holding a 3x3, padding-1 convolution of ``c`` channels in and out per ``c``."""
    items = []
    for c in channels:
        module = nn.Conv2d(c, c, 3, padding=1).eval()
        shape = (batch, c, side, side)
        items.append(Item(f"c{c}", "Conv", shape, module, profiled_bytes(module, shape, "Conv")))
    return [items]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m collector.campaign.channels", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", type=Path, default=Path("runs/channels.csv"), help="CSV (appended)")
    p.add_argument("--channels", default=f"{DEFAULT_CHANNELS[0]}-{DEFAULT_CHANNELS[-1]}",
                   help="range FIRST-LAST of channel counts (in = out)")  # fmt: skip
    p.add_argument("--side", type=int, default=DEFAULT_SIDE, help="input height = width")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    add_window_options(p, rounds=5, window_s=0.1)
    return p


def _range(text: str) -> tuple[int, ...]:
    first, _, last = text.partition("-")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high:
        raise ValueError(f"--channels wants FIRST-LAST with 1 <= FIRST <= LAST, got {text!r}")
    return tuple(range(low, high + 1))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        channels = _range(args.channels)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pin_torch_threads()
    groups = plan(channels, args.side, args.batch)
    return TABLE.run_from_args(args, groups)


if __name__ == "__main__":
    sys.exit(main())
