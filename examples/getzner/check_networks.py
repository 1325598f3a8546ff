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


def _cv_table(info: dict) -> list[str]:
    lines = [
        "| operator | configs | layer-sum R² | layer-sum MAPE % | baseline R² | baseline MAPE % |",
        "|---|---|---|---|---|---|",
    ]
    for op, s in sorted(info.get("cv", {}).items()):
        ours, base = s["layer-sum"], s["one-constant-j-per-flop"]
        lines.append(
            f"| {op} | {s['configs']} | {ours['r2']:.4f} | {ours['mape_pct']:.1f} | "
            f"{base['r2']:.4f} | {base['mape_pct']:.1f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--out", type=Path, help="also write these tables as Markdown here")
    args = parser.parse_args(argv)
    published = load_current(args.artifacts, HARDWARE)
    bundle = published.bundle
    model = bundle.layer_sum
    if model is None:
        raise SystemExit(f"{HARDWARE} has no layer-sum model under {args.artifacts}")
    k = bundle.layer_sum_info.get("baseline_j_per_flop_all_rows")
    header = (
        "| network | batch | J per pass | 90 % interval (J) | implied W | k × FLOPs (J) | shares |"
    )
    rows = [header, "|---|---|---|---|---|---|---|"]
    print(header)
    for name, build in NETWORKS.items():
        nodes = profile_nodes(export_weightless(build().eval(), torch.zeros(1, 3, 224, 224)))
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            answer = model.predict_nodes(nodes, batch)
            power = answer.energy_j / answer.duration_s
            flops = sum(n.flops for n in nodes) * batch
            baseline = f"{k * flops:.3g}" if k else "-"
            shares = " ".join(
                f"{op} {e / answer.energy_j:.0%}" for op, e in sorted(answer.by_op_j.items())
            )
            row = (
                f"| {name} | {batch} | {answer.energy_j:.3g} | "
                f"[{answer.low_j:.3g}, {answer.high_j:.3g}] | {power:.1f} | {baseline} | {shares} |"
            )
            rows.append(row)
            print(row)
        for warning in answer.warnings:
            print(f"  ! {warning}")
    if args.out:
        text = [
            f"# layer-sum on {HARDWARE} (predictor version {published.version})",
            "",
            "Measured CPU energy: RAPL package energy of a 2-core allocation of an Intel Xeon "
            "Gold 5120 (a shared 14-core socket, ~75 W whatever the layer), single layers "
            "(Getzner et al. 2023). Grouped 10-fold CV (a configuration's repeats together) of "
            "energy per forward pass, per operator type, beside the one-constant baseline "
            "(k × FLOPs, k fitted on the Conv+Linear rows of each fold):",
            "",
            *_cv_table(dict(bundle.layer_sum_info)),
            "",
            "Whole networks written in torch (never measured here: a consistency check, not an "
            "accuracy check): energy per forward pass as the sum of the layers.",
            "",
            *rows,
            "",
        ]
        args.out.write_text("\n".join(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
