"""Whole CNNs the layer data never held (AlexNet-, VGG-like, written in torch here), answered by
the shipped layer-sum model of xeon-gold-5120-2c at several batch sizes: energy per forward
pass, its interval, the share of each operator type, implied power, warnings; with
``--before VERSION``, beside a previous version's answers. No measurement of these networks is
used (there is none here): this checks consistency, not accuracy. With ``--composition CSV``
the report also states the composition experiment (whole networks against the sum of their
layers, measured on this machine by ``python -m collector.campaign.composition``) and the rule
it supports; ``--getzner-dir`` adds the single-layer rows' package power.

Usage::

    python examples/getzner/check_networks.py [--artifacts artifacts] [--before VERSION] \
        [--composition artifacts/measurements/composition-amd-epyc.csv] [--out LAYER-SUM.md]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from composition_tables import (  # a script: its folder is on sys.path
    composition_section,
    control_section,
    power_section,
)
from correction_tables import channels_section, elementwise_section  # a script's folder
from torch import nn

from estimator.artifacts import load_current, load_version
from estimator.layerwise.model import LayerAnswer, LayerSum
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
    "vgg13-like": lambda: _vgg([64, 128, 256, 512, 512], [2, 2, 2, 2, 2]),
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


def _per_call_table(model: object, power_w: float) -> list[str]:
    per_call = getattr(model, "per_call_j_", {})
    lines = ["| operator | per-call J | at the median power: µs |", "|---|---|---|"]
    for op, j in sorted(per_call.items()):
        lines.append(f"| {op} | {j:.3g} | {j / power_w * 1e6:.0f} |")
    return lines


@dataclass(frozen=True)
class Change:
    """One network's answer after/before, and each operator's joules in both."""

    network: str
    batch: int
    ratio: float
    before_j: dict[str, float]
    after_j: dict[str, float]


def _by_op(answer: LayerAnswer) -> dict[str, float]:
    return dict(answer.by_op_j)


def _network_rows(model: object, before: object | None, k: float | None, batches: list[int]):
    """Table rows and, per (network, batch), after/before."""
    rows, ratios = [], []
    for name, build in NETWORKS.items():
        nodes = profile_nodes(export_weightless(build().eval(), torch.zeros(1, 3, 224, 224)))
        for batch in batches:
            answer = model.predict_nodes(nodes, batch)
            power = answer.energy_j / answer.duration_s
            flops = sum(n.flops for n in nodes) * batch
            baseline = f"{k * flops:.3g}" if k else "-"
            shares = " ".join(
                f"{op} {e / answer.energy_j:.0%}" for op, e in sorted(answer.by_op_j.items())
            )
            old = ""
            if before is not None:
                earlier = before.predict_nodes(nodes, batch)
                previous = earlier.energy_j
                ratios.append(
                    Change(name, batch, answer.energy_j / previous, _by_op(earlier), _by_op(answer))
                )
                old = f" {previous:.3g} | {answer.energy_j / previous:.3f} |"
            rows.append(
                f"| {name} | {batch} | {answer.energy_j:.3g} | "
                f"[{answer.low_j:.3g}, {answer.high_j:.3g}] |{old} {power:.1f} | {baseline} | "
                f"{shares} |"
            )
            print(rows[-1])
        for warning in answer.warnings:
            print(f"  ! {warning}")
    return rows, ratios


def _rule_section(args: argparse.Namespace, model: LayerSum, before: LayerSum | None) -> list[str]:
    """The composition rule the experiment supports, and how it is applied to the Xeon."""
    lines, found = composition_section(args.composition)
    flat = getattr(before, "legacy_overhead_j_", None)
    return [
        "## The rule",
        "",
        f"On this project's VM, whole networks cost **more** than the sum of their layers "
        f"run alone in the single-layer protocol, not less: measured/sum median "
        f"{found['ratio_median']:.3f}. Leave one network out, the plain sum is "
        f"{found['sum_ape_pct']:.1f} % off (predicted/measured "
        f"{found['sum_pred_over_meas']:.3f}); the best rule is {found['best_rule']} "
        f"({found['best_ape_pct']:.1f} %, parameter {found['best_parameter']:.3g}). No part "
        f"of a layer's per-call cost is saved in a network: the once-fraction f, the share "
        f"of each layer's per-call cost a network would pay only once, fitted at "
        f"{found['once_fraction']:.2f} (< 0: no saving).",
        "",
        f"Applied to the Getzner layer-sum predictor: each node keeps its single-layer "
        f"energy per pass, per-call cost included (f = {model.once_fraction:g}; the per-call "
        f"costs, intercepts of the Getzner rows themselves, are below)"
        + (
            f"; the previous version took a flat {flat:.3g} J out of every node and added "
            f"it once (the 1st percentile of every row's energy per pass: the cheapest "
            f"layer's whole energy, not a per-call cost), which the experiment does not "
            f"support"
            if flat
            else ""
        )
        + ". The excess of a network over its layers on this VM (most likely the caches: "
        "a layer alone runs hot on one input and its own weights, a network cycles a "
        "larger working set, on two crowded cores) is this machine's and is not carried "
        "to the Xeon: it would raise the Xeon's answers, and the held-back networks are "
        "already over-predicted there.",
        "",
        *lines,
        "",
        *([*control_section(args.composition, args.control), ""] if args.control else []),
    ]


def _missed_section(args: argparse.Namespace, model: LayerSum) -> list[str]:
    """What single random layers miss in a real network, measured on this VM."""
    xeon_ps_per_byte = model.j_per_byte_ / model.power_w_[1] * 1e12
    return [
        "## What single random layers miss",
        "",
        "### Ops no single layer measured",
        "",
        "The layer-sum prices an op the Getzner rows never measured (ReLU, BatchNorm, Add...) "
        "per activation byte at the median energy per byte of the kernel-1, stride-1 MaxPool "
        "rows, times the op's ratio to that pool measured on this VM:",
        "",
        *elementwise_section(args.elementwise, xeon_ps_per_byte),
        "",
        "### Channels in whole blocks",
        "",
        *channels_section(args.channels),
        "",
    ]


def _share_change(changes: list[Change], op: str) -> float:
    """Median over the networks of the drop in ``op``'s joules, as a share of the answer before."""
    drops = [
        (c.before_j.get(op, 0.0) - c.after_j.get(op, 0.0)) / sum(c.before_j.values())
        for c in changes
    ]
    return float(np.median(drops))


def _held_back_section(changes: list[Change], corrected: bool) -> list[str]:
    """The answers after/before, and what they say of the held-back networks."""
    ratios = [c.ratio for c in changes]
    median = float(np.median(ratios))
    lines = [
        f"after/before: median {median:.3f} (range {min(ratios):.3f}-{max(ratios):.3f}). "
        f"Both versions' intervals are today's code's.",
        "",
        "## The held-back networks",
        "",
        "The held-back AlexNet/VGG runs (543 RAPL-metered runs on the same Xeon allocation) "
        "were over-predicted by a median factor 1.13 by version e24cf7a8b037. Composition does "
        "not explain it: where a network and its own layers could both be metered, the network "
        "cost no less than its layers.",
        "",
    ]
    if not corrected:
        return lines
    relu, conv = _share_change(changes, "Relu"), _share_change(changes, "Conv")
    relu_before = [c.before_j.get("Relu", 0.0) / sum(c.before_j.values()) for c in changes]
    return [
        *lines,
        "What the sum of random single layers gets wrong for a real network is the layers "
        "themselves, in two ways measured above:",
        "",
        "- **ReLU was priced as a kernel-1 MaxPool.** No ReLU was measured on the Xeon, and "
        "the fallback priced it per byte as the measured op nearest to an elementwise one; "
        "PyTorch runs that pool through a scalar loop and ReLU through a vectorised kernel, "
        "and on this VM ReLU costs a few percent of the pool per byte. ReLU was "
        f"{min(relu_before):.0%}-{max(relu_before):.0%} of every answer; repriced, its joules "
        f"fall by a median {relu:.1%} of the answer.",
        "- **Channels in whole blocks.** A random configuration's channel count is a whole "
        "number of 16-channel blocks one time in 16; AlexNet's and VGG's are whole blocks "
        "(64-512) but for the 3-channel input. The convolution model now sees each layer's "
        "padding factor (its grouped CV error is in the table above), and the networks' "
        f"convolutions fall by a median {conv:.1%} of the answer.",
        "",
        f"Together the answers fall to {median:.3f} of the previous version (median). If "
        "the held-back over-prediction of 1.13 came from these two, the answers would now "
        f"sit near {1.13 * median:.2f} x the held-back measurements. That cannot be checked "
        "here: the held-back rows are not in this repository. What remains unexplained "
        "would be the package power (the single-layer rows drew 73-78 W, table above) or "
        "something of the networks no single-layer row shows.",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--before", help="a previous version of the predictor to compare with")
    parser.add_argument("--composition", type=Path, help="the composition experiment's CSV")
    parser.add_argument("--control", type=Path, help="the composition experiment's control CSV")
    parser.add_argument("--getzner-dir", type=Path, help="Getzner et al.'s raw CSV folder")
    parser.add_argument("--elementwise", type=Path, help="the elementwise experiment's CSV")
    parser.add_argument("--channels", type=Path, help="the channel-block experiment's CSV")
    parser.add_argument("--out", type=Path, help="also write the report as Markdown here")
    args = parser.parse_args(argv)
    published = load_current(args.artifacts, HARDWARE)
    model = published.bundle.layer_sum
    if model is None:
        raise SystemExit(f"{HARDWARE} has no layer-sum model under {args.artifacts}")
    before = None
    if args.before:
        before = load_version(args.artifacts, HARDWARE, args.before).bundle.layer_sum
    info = dict(published.bundle.layer_sum_info)
    k = info.get("baseline_j_per_flop_all_rows")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    rows, ratios = _network_rows(model, before, k, batches)
    median_w = model.power_w_[1]
    text = [f"# layer-sum on {HARDWARE} (predictor version {published.version})", ""]
    if args.composition:
        text += _rule_section(args, model, before)
    text += [
        "## The Getzner single-layer rows",
        "",
        "Measured CPU energy: RAPL package energy of a 2-core allocation of an Intel Xeon "
        "Gold 5120 (a shared 14-core socket, ~75 W whatever the layer), single layers "
        "(Getzner et al. 2023). Grouped 10-fold CV (a configuration's repeats together) of "
        "energy per forward pass, per operator type, beside the one-constant baseline "
        "(k × FLOPs, k fitted on the Conv+Linear rows of each fold):",
        "",
        *_cv_table(info),
        "",
        "Per-call cost per operator type: intercept at zero work of each operator's smaller "
        "single-layer rows (energy per pass on FLOPs for Conv/Gemm, bytes moved for MaxPool):",
        "",
        *_per_call_table(model, median_w),
        "",
    ]
    if args.getzner_dir:
        text += ["Package power of the single-layer rows:", ""]
        text += [*power_section(args.getzner_dir, median_w), ""]
    if args.elementwise and args.channels:
        text += _missed_section(args, model)
    header = "| network | batch | J per pass | 90 % interval (J) |"
    header += " before (J) | after/before |" if before is not None else ""
    header += " implied W | k × FLOPs (J) | shares |"
    text += [
        "## Whole networks written in torch",
        "",
        "Never measured here: a consistency check, not an accuracy check; energy per forward "
        "pass as the sum of the layers"
        + (f", beside version {args.before}" if before is not None else "")
        + ".",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
        *rows,
        "",
    ]
    if ratios:
        text += _held_back_section(ratios, corrected=bool(args.elementwise and args.channels))
    if args.out:
        args.out.write_text("\n".join(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
