"""Two well-known CIFAR-10 CNNs (32x32 inputs) as weightless ONNX, to ask the quadro-rtx6000
predictor about models it never saw:

    python examples/ecnas/cifar_models.py --out runs/cifar
    joulecast predict runs/cifar/resnet18.onnx --hardware quadro-rtx6000 \
        --batch-size 256 --samples 50000 --json

- ``resnet18``: the CIFAR variant of He et al. (2016): a 3x3 stem of 64 filters without
  max-pool, four stages of two basic blocks (64, 128, 256, 512 filters, stride 2 from the
  second), global average pooling, a dense layer to 10 classes (11.2 M parameters).
- ``vgg11``: VGG-11 with batch norm (configuration A of Simonyan & Zisserman, 2015) on 32x32:
  eight 3x3 convolutions with five 2x2 max-pools, a dense layer 512 -> 10 (9.2 M parameters).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

from joulecast.weightless import export_weightless


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet18(num_classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for i, cout in enumerate((64, 128, 256, 512)):
        for j in range(2):
            layers.append(BasicBlock(cin, cout, 2 if i > 0 and j == 0 else 1))
            cin = cout
    return nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes)
    )


def vgg11(num_classes: int = 10) -> nn.Module:
    layers: list[nn.Module] = []
    cin = 3
    for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU()]
            cin = int(v)
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512, num_classes))


MODELS = {"resnet18": resnet18, "vgg11": vgg11}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/cifar"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in MODELS.items():
        model = make().eval()
        params = sum(p.numel() for p in model.parameters())
        path = args.out / f"{name}.onnx"
        path.write_bytes(export_weightless(model, torch.zeros(1, 3, 32, 32)))
        print(f"{path}: {params / 1e6:.2f} M parameters")


if __name__ == "__main__":
    main()
