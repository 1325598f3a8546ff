"""Which architecture for audio tagging costs least to train? Three candidates, compared before
any of them is trained: predicted energy (with its 90 % interval), carbon and cost.

A notebook-style script (``# %%`` cells run one by one in VS Code or Jupytext); from a shell::

    python examples/compare_architectures.py comparison.png --region FRA --price-per-kwh 0.25

The task is the paper's: 10-second clips as 128 mel bands x 64 frames, 10 sound classes; the
run trains on 50,000 clips for 10 epochs at batch 32, then tests on as many. Predictions come
from the shipped predictors in this process (``--server HOST:PORT`` asks a server instead);
their energy is estimated, not measured, unless ``--hardware`` names a measured GPU.
"""

# %% The candidates: one input clip, three ways to tag it
from __future__ import annotations

import argparse
import math
import sys

import torch
from torch import nn

import joulecast

CLIP = (1, 1, 128, 64)
"""One batch of one clip: channel, mel bands, frames."""
CLASSES = 10


class Transformer(nn.Module):
    """Each frame's 128 mel bands projected to 64, two encoder layers over the 64 frames."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(128, 64)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(64, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.embed(x.squeeze(1).transpose(1, 2))
        return self.head(self.encoder(frames).mean(1))


def candidates() -> dict[str, nn.Module]:
    return {
        "MLP": nn.Sequential(
            nn.Flatten(), nn.Linear(128 * 64, 512), nn.ReLU(), nn.Linear(512, CLASSES)
        ),
        "CNN": nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, CLASSES),
        ),
        "Transformer": Transformer(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png", help="where to write the figure (PNG)")
    parser.add_argument("--region", default="FRA", help="ISO 3166-1 alpha-3 code (gCO2eq)")
    parser.add_argument("--price-per-kwh", type=float, default=0.25, help="price of a kWh")
    parser.add_argument("--hardware", help="a published hardware (default: the first one)")
    parser.add_argument("--server", help="ask this server (HOST:PORT) instead of this process")
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    return parser.parse_args(argv)


# %% Predict: one call per candidate, nothing trained
def predict_all(args: argparse.Namespace) -> dict[str, joulecast.Prediction]:
    estimator = joulecast.Estimator(server=args.server)
    torch.manual_seed(0)
    return {
        name: estimator.predict(
            model,
            torch.zeros(CLIP),
            batch_size=args.batch_size,
            samples=args.samples,
            epochs=args.epochs,
            hardware=args.hardware,
            region=args.region,
            price_per_kwh=args.price_per_kwh,
        )
        for name, model in candidates().items()
    }


def report(predictions: dict[str, joulecast.Prediction]) -> str:
    lines = [
        f"{'model':<12} {'family':<12} {'params':>10} {'train kWh':>10} {'90 % interval':>22}"
        f" {'gCO2eq':>9} {'cost':>8}"
    ]
    for name, p in predictions.items():
        train = p.train
        if train is None:
            lines.append(f"{name:<12} {p.family:<12} {p.params:>10,}  no training answer")
            continue
        interval = f"[{train.energy_low_kwh:.3g}, {train.energy_high_kwh:.3g}]"
        lines.append(
            f"{name:<12} {p.family:<12} {p.params:>10,} {train.energy_kwh:>10.3g} "
            f"{interval:>22} {p.co2_g or math.nan:>9.3g} {p.cost or math.nan:>8.3g}"
        )
    first = next(iter(predictions.values()))
    lines.append(
        f"hardware {first.hardware}, energy source {first.energy_source}"
        + (" (ESTIMATED, not measured)" if first.energy_is_estimate else "")
    )
    return "\n".join(lines)


# %% Plot: training energy with its interval, carbon and cost of training and testing
def plot(predictions: dict[str, joulecast.Prediction], png: str, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(predictions)
    answered = [predictions[n].train for n in names]
    kwh = [t.energy_kwh if t else math.nan for t in answered]
    below = [t.energy_kwh - t.energy_low_kwh if t else 0.0 for t in answered]
    above = [t.energy_high_kwh - t.energy_kwh if t else 0.0 for t in answered]
    co2 = [predictions[n].co2_g or math.nan for n in names]
    cost = [predictions[n].cost or math.nan for n in names]
    figure, axes = plt.subplots(1, 3, figsize=(12, 4))
    axes[0].bar(names, kwh, yerr=[below, above], capsize=6, color="tab:blue")
    axes[0].set_ylabel("training energy (kWh), 90 % interval")
    axes[1].bar(names, co2, color="tab:green")
    axes[1].set_ylabel(f"gCO2eq, train + test ({args.region})")
    axes[2].bar(names, cost, color="tab:orange")
    axes[2].set_ylabel(f"cost, train + test (at {args.price_per_kwh:g} per kWh)")
    first = predictions[names[0]]
    estimated = " - ESTIMATED energy" if first.energy_is_estimate else ""
    figure.suptitle(
        f"{args.samples:,} clips x {args.epochs} epochs, batch {args.batch_size}, on "
        f"{first.hardware}{estimated}"
    )
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        predictions = predict_all(args)
    except joulecast.JoulecastError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(predictions))
    plot(predictions, args.png, args)
    print(f"figure written to {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
