"""Shared look of the report's figures: one colour per family (the paper's), one marker per phase.

Importing this module selects matplotlib's Agg backend: the report draws files, never windows.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

FAMILIES = ("mlp", "rnn", "cnn", "crnn", "transformer")
FAMILY_LABELS = {
    "mlp": "MLP",
    "rnn": "RNN",
    "cnn": "CNN",
    "crnn": "CRNN",
    "rnn-frames": "RNN (64 frames)",
    "transformer": "Transformer",
}
# The paper's colours: MLP blue, RNN green, CNN red, CRNN purple; beyond the paper, the frames RNN
# orange and the transformers (patch encoders and conformers) cyan.
FAMILY_COLOURS = {
    "mlp": "#1f77b4",
    "rnn": "#2ca02c",
    "cnn": "#d62728",
    "crnn": "#9467bd",
    "rnn-frames": "#ff7f0e",
    "transformer": "#17becf",
    "other": "#7f7f7f",
}
PHASE_MARKERS = {"train": "o", "test": "^"}
DPI = 120


def colour(family: str) -> str:
    return FAMILY_COLOURS.get(family, FAMILY_COLOURS["other"])


def label(family: str) -> str:
    return FAMILY_LABELS.get(family, family)


def new_figure(nrows: int, ncols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained"
    )
    return fig, axes


def wants_log(values: np.ndarray, ratio: float = 30.0) -> bool:
    """A log axis when the positive values span more than ``ratio`` (default 30x)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size < 2:
        return False
    return bool(values.max() / values.min() > ratio)


def set_scales(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    if wants_log(x):
        ax.set_xscale("log")
    if wants_log(y):
        ax.set_yscale("log")


def save(fig: Figure, path: str) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def message_figure(path: str, title: str, text: str) -> None:
    """A figure that says, in words, why there is nothing to plot."""
    fig, axes = new_figure(1, 1, 7.0, 2.6)
    ax = axes[0, 0]
    ax.axis("off")
    ax.set_title(title, fontsize=12)
    ax.text(0.5, 0.45, text, ha="center", va="center", wrap=True, fontsize=11)
    save(fig, path)
