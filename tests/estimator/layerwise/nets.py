"""Whole CNNs written here in torch (AlexNet- and VGG-like, ReLU and pooling between layers),
exported weightless: graphs the layer data never held, to check layer-sum's answers."""

from __future__ import annotations

import torch
from torch import nn

from joulecast.weightless import export_weightless


def alexnet_like(relu: bool = True) -> nn.Module:
    act = (lambda: nn.ReLU()) if relu else (lambda: nn.Identity())
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), act(), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, 1, 2), act(), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, 1, 1), act(),
        nn.Conv2d(384, 256, 3, 1, 1), act(),
        nn.Conv2d(256, 256, 3, 1, 1), act(), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), act(),
        nn.Linear(4096, 4096), act(),
        nn.Linear(4096, 1000),
    )  # fmt: skip


def vgg_like(
    widths: tuple[int, ...] = (64, 128, 256, 512, 512), image: int = 224, hidden: int = 4096
) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2)]
        channels = width
    side = image // 2 ** len(widths)
    return nn.Sequential(
        *layers,
        nn.Flatten(),
        nn.Linear(channels * side * side, hidden), nn.ReLU(),
        nn.Linear(hidden, 1000),
    )  # fmt: skip


def graph(module: nn.Module, image: int = 224) -> bytes:
    """Weightless ONNX of ``module`` with a dynamic batch axis."""
    return export_weightless(module.eval(), torch.zeros(1, 3, image, image))
