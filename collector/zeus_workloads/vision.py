"""The two image classifiers of the Zeus NSDI '23 workloads, written from their papers.

- :class:`ShuffleNetV2Cifar`: ShuffleNet V2 at width 1.0x (Ma et al., 2018) in the CIFAR form the
  Zeus CIFAR-100 example trains (its ``models/shufflenetv2.py``, adopted from
  weiaicunzai/pytorch-cifar100): a 3x3 stem at stride 1 with batch norm and no ReLU, no max-pool,
  stages of 4, 8 and 4 units (116, 232, 464 channels), a 1x1 convolution to 1,024 channels,
  global average pooling and a 100-way linear layer. Every convolution carries a bias, as in that
  implementation (the ImageNet ShuffleNet V2 has none): it is what the trained network had.
- :class:`ResNet50`: ResNet-50 v1.5 (He et al., 2016, with the stride on the 3x3 convolution of
  each bottleneck as torchvision builds it; the Zeus ImageNet example takes
  ``torchvision.models.resnet50``): 25,557,032 parameters, 224x224 input, 1,000 classes.
"""

from __future__ import annotations

import torch
from torch import nn

SHUFFLENET_STAGES = ((116, 4), (232, 8), (464, 4))
"""(output channels, units) of the three stages at width 1.0x; the first unit of each halves
the resolution."""
SHUFFLENET_STEM = 24
SHUFFLENET_LAST = 1024
RESNET50_BLOCKS = (3, 4, 6, 3)
RESNET_WIDTHS = (64, 128, 256, 512)
BOTTLENECK_EXPANSION = 4


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> list:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups),
        nn.BatchNorm2d(c_out),
    ]


def _shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of the ``groups`` halves (the "channel shuffle")."""
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """One ShuffleNet V2 unit. A unit that keeps shape splits the channels in two and transforms
    one half; a unit that changes them (stride 2 or new width) transforms the whole input twice,
    each branch giving half of the output channels."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.split = stride == 1 and c_in == c_out
        half = c_out // 2
        inner = c_in // 2 if self.split else c_in
        self.branch = nn.Sequential(
            *_conv_bn(inner, inner, 1),
            nn.ReLU(),
            *_conv_bn(inner, inner, 3, stride, groups=inner),
            *_conv_bn(inner, half, 1),
            nn.ReLU(),
        )
        self.shortcut = (
            nn.Identity()
            if self.split
            else nn.Sequential(
                *_conv_bn(c_in, c_in, 3, stride, groups=c_in),
                *_conv_bn(c_in, half, 1),
                nn.ReLU(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split:
            kept, transformed = x.chunk(2, dim=1)
        else:
            kept, transformed = x, x
        return _shuffle(torch.cat([self.shortcut(kept), self.branch(transformed)], dim=1))


class ShuffleNetV2Cifar(nn.Module):
    """ShuffleNet V2 1.0x for 3x32x32 images (stride-1 stem, no max-pool)."""

    def __init__(self, classes: int = 100) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(3, SHUFFLENET_STEM, 3))
        units: list[nn.Module] = []
        c_in = SHUFFLENET_STEM
        for c_out, n in SHUFFLENET_STAGES:
            units.append(ShuffleUnit(c_in, c_out, 2))
            units += [ShuffleUnit(c_out, c_out, 1) for _ in range(n - 1)]
            c_in = c_out
        self.units = nn.Sequential(*units)
        self.head = nn.Sequential(*_conv_bn(c_in, SHUFFLENET_LAST, 1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(SHUFFLENET_LAST, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.units(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride: v1.5), 1x1 expand; projection when shapes change."""

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * BOTTLENECK_EXPANSION
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.project = (
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.project(x))


class ResNet50(nn.Module):
    """ResNet-50 v1.5 for 3x224x224 images."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        blocks: list[nn.Module] = []
        c_in = 64
        for stage, (width, n) in enumerate(zip(RESNET_WIDTHS, RESNET50_BLOCKS, strict=True)):
            for i in range(n):
                stride = 2 if i == 0 and stage > 0 else 1
                blocks.append(Bottleneck(c_in, width, stride))
                c_in = width * BOTTLENECK_EXPANSION
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))
