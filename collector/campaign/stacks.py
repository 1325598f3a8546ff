"""VGG- and AlexNet-shaped stacks built only from the layers Getzner et al. measured alone.

A stack is an ``nn.Sequential`` of Conv2d, ReLU, MaxPool2d, Flatten and Linear; each child is
later run alone on a tensor of the shape it sees inside the stack, so that the whole network and
the sum of its parts run exactly the same modules on exactly the same shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

CLASSES = 10
ARCHS = ("vgg", "alexnet")


@dataclass(frozen=True)
class StackSpec:
    """One network: its shape family, base width (channels of the first conv), square input
    side in pixels and batch size."""

    arch: str
    width: int
    image_size: int
    batch_size: int

    @property
    def name(self) -> str:
        return f"{self.arch}-w{self.width}-i{self.image_size}-b{self.batch_size}"


@dataclass(frozen=True)
class LayerSpec:
    """One child of a stack as it is run there: the module, its input shape (batch first) and
    its work (multiply-accumulates for Conv/Linear, elements read for pooling/ReLU)."""

    key: str
    op: str
    position: int
    module: nn.Module
    input_shape: tuple[int, ...]
    macs: int
    elements_in: int


def _vgg(width: int, image_size: int) -> nn.Sequential:
    plan: list[int | str] = [width, "M", 2 * width, "M", 4 * width, 4 * width, "M"]
    plan += [8 * width, 8 * width, "M"]
    layers: list[nn.Module] = []
    channels, side = 3, image_size
    for item in plan:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            side //= 2
        else:
            layers += [nn.Conv2d(channels, int(item), 3, 1, 1), nn.ReLU()]
            channels = int(item)
    hidden = 16 * width
    layers += [nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, CLASSES))
    return nn.Sequential(*layers)


def _alexnet(width: int, image_size: int) -> nn.Sequential:
    def pooled(side: int) -> int:
        return (side - 3) // 2 + 1

    side = (image_size + 2 * 2 - 5) // 2 + 1
    side = pooled(pooled(side))
    side = pooled(side)
    hidden = 16 * width
    return nn.Sequential(
        nn.Conv2d(3, width, 5, 2, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(width, 2 * width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Conv2d(2 * width, 4 * width, 3, 1, 1), nn.ReLU(),
        nn.Conv2d(4 * width, 4 * width, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(4 * width * side * side, hidden), nn.ReLU(),
        nn.Linear(hidden, CLASSES),
    )  # fmt: skip


def build(spec: StackSpec) -> nn.Sequential:
    """The network of ``spec``, in eval mode (inference only, as in the single-layer runs)."""
    if spec.arch == "vgg":
        return _vgg(spec.width, spec.image_size).eval()
    if spec.arch == "alexnet":
        return _alexnet(spec.width, spec.image_size).eval()
    raise ValueError(f"unknown arch {spec.arch!r}; known: {', '.join(ARCHS)}")


def _describe(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]  # type: ignore[index]
        return f"Conv2d-{module.in_channels}x{module.out_channels}-k{k}s{s}p{p}"
    if isinstance(module, nn.Linear):
        return f"Linear-{module.in_features}x{module.out_features}"
    if isinstance(module, nn.MaxPool2d):
        return f"MaxPool2d-k{module.kernel_size}s{module.stride}"
    return type(module).__name__


def layers_of(spec: StackSpec, network: nn.Sequential) -> list[LayerSpec]:
    """Every child of ``network`` with the input shape it sees (from one pass of a single
    sample; the batch axis is then set to the spec's) and its work."""
    import torch

    sample = torch.zeros(1, 3, spec.image_size, spec.image_size)
    shape: tuple[int, ...] = (spec.batch_size, 3, spec.image_size, spec.image_size)
    out: list[LayerSpec] = []
    for position, module in enumerate(network):
        with torch.no_grad():
            sample = module(sample)
        out_shape = (spec.batch_size, *sample.shape[1:])
        elements_in = math.prod(shape)
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]  # type: ignore[index]
            macs = math.prod(out_shape) * k * module.in_channels
        elif isinstance(module, nn.Linear):
            macs = math.prod(out_shape) * module.in_features
        else:
            macs = 0
        dims = "x".join(str(d) for d in shape)
        out.append(
            LayerSpec(
                key=f"{_describe(module)}-in{dims}",
                op=type(module).__name__,
                position=position,
                module=module,
                input_shape=shape,
                macs=macs,
                elements_in=elements_in,
            )
        )
        shape = out_shape
    return out
