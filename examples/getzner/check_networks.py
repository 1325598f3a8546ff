"""Whole CNNs the layer data never held (AlexNet-, VGG-like, written in torch here), answered by
the shipped layer-sum model of xeon-gold-5120-2c at several batch sizes: energy per forward
pass, its interval, the share of each operator type, implied power, warnings. No measurement of
these networks is used (there is none here): this checks consistency, not accuracy.

Usage::

    python examples/getzner/check_networks.py [--artifacts artifacts]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from estimator.artifacts import load_current
from joulecast.graph import profile_nodes
from joulecast.weightless import export_weightless

HARDWARE = "xeon-gold-5120-2c"


def _vgg(widths: list[int], convs: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for width, count in zip(widths, convs, strict=True):
        for _ in range(count):
            layers += [nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 1000),
    )  # fmt: skip


def _alexnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, 1, 1), nn.ReLU(), nn.Conv2d(384, 256, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Dropout(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000),
    )  # fmt: skip


NETWORKS = {
    "alexnet-like": _alexnet,
    "vgg11-like": lambda: _vgg([64, 128, 256, 512, 512], [1, 1, 2, 2, 2]),
    "vgg16-like": lambda: _vgg([64, 128, 256, 512, 512], [2, 2, 3, 3, 3]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    args = parser.parse_args(argv)
    bundle = load_current(args.artifacts, HARDWARE).bundle
    model = bundle.layer_sum
    k = bundle.layer_sum_info.get("baseline_j_per_flop_all_rows")
    if model is None:
        raise SystemExit(f"{HARDWARE} has no layer-sum model under {args.artifacts}")
    print(
        f"{'network':14} {'batch':>5} {'J/pass':>9} {'90% interval':>21} {'W':>5} "
        f"{'k*FLOPs':>9}  shares"
    )
    for name, build in NETWORKS.items():
        nodes = profile_nodes(export_weightless(build().eval(), torch.zeros(1, 3, 224, 224)))
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            answer = model.predict_nodes(nodes, batch)
            power = answer.energy_j / answer.duration_s
            flops = sum(n.flops for n in nodes) * batch
            baseline = f"{k * flops:9.3g}" if k else f"{'-':>9}"
            shares = " ".join(
                f"{op} {e / answer.energy_j:.0%}" for op, e in sorted(answer.by_op_j.items())
            )
            print(
                f"{name:14} {batch:5d} {answer.energy_j:9.3g} "
                f"[{answer.low_j:9.3g}, {answer.high_j:9.3g}] {power:5.1f} {baseline}  {shares}"
            )
            for warning in answer.warnings:
                print(f"{'':21}! {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
