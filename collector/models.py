"""The four model families of the paper (docs/PAPER.md) and a transformer family,
built from a :class:`ModelConfig`.

Input is one mel spectrogram per sample, shape (batch, 1, 128, 64); the output is a sigmoid
over 10 classes (multi-label, trained with binary cross-entropy). The transformer models live in
:mod:`collector.transformers`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from collector.spectrogram import INPUT_SHAPE as INPUT_SHAPE  # the input every family takes
from collector.spectrogram import N_CLASSES, N_FRAMES, N_MELS
from collector.transformers import Conformer, PatchTransformer
from joulecast.errors import InvalidArgument

FAMILIES = ("mlp", "cnn", "rnn", "crnn", "transformer")
RNN_INPUTS = ("flat", "frames")
BLOCKS = ("patch", "conformer")
"""Transformer variants: ``patch`` (an AST/PaSST-like encoder over 8x8 patches) or ``conformer``
(conformer blocks over the 64 frames); see :mod:`collector.transformers`."""


@dataclass(frozen=True)
class ModelConfig:
    """One architecture of a sweep.

    ``layers`` and ``hidden`` hold one number for MLP/CNN/RNN and two (conv, rnn) for CRNN;
    a transformer has ``layers=(depth,)`` and ``hidden=(width, heads)``.
    ``rnn_input`` is ``flat`` (the authors' length-1 sequence of 8192 features) or ``frames``
    (64 steps of 128 mel features); it only matters for the RNN family.
    ``block`` is the transformer variant (:data:`BLOCKS`, ``patch`` when left empty); it is empty
    for the other families. Transformer rows are stored with variant ``paper`` (the paper's input
    and protocol): the block shows in the ``config_id``.
    """

    family: str
    layers: tuple[int, ...]
    hidden: tuple[int, ...]
    rnn_input: str = "flat"
    block: str = ""

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise InvalidArgument(f"unknown family {self.family!r}; expected one of {FAMILIES}")
        want_layers = 2 if self.family == "crnn" else 1
        want_hidden = 1 if self.family in ("mlp", "cnn", "rnn") else 2
        if len(self.layers) != want_layers or len(self.hidden) != want_hidden:
            raise InvalidArgument(
                f"{self.family} needs {want_layers} layer count(s) and {want_hidden} hidden "
                f"size(s), got layers={self.layers} hidden={self.hidden}"
            )
        if any(v < 1 for v in (*self.layers, *self.hidden)):
            raise InvalidArgument(f"layers and hidden sizes must be >= 1: {self}")
        if self.rnn_input not in RNN_INPUTS:
            raise InvalidArgument(f"rnn_input must be one of {RNN_INPUTS}, got {self.rnn_input!r}")
        if self.rnn_input != "flat" and self.family != "rnn":
            raise InvalidArgument("rnn_input='frames' applies to the rnn family only")
        if self.family == "transformer":
            self._check_transformer()
        elif self.block:
            raise InvalidArgument(f"block={self.block!r} applies to the transformer family only")
        if self.family in ("cnn", "crnn"):
            pools = self.layers[0]
            if N_FRAMES >> pools < 1:
                raise InvalidArgument(f"{pools} pooling layers leave no frames of {N_FRAMES}")

    def _check_transformer(self) -> None:
        if not self.block:
            object.__setattr__(self, "block", "patch")  # the default variant, normalised
        if self.block not in BLOCKS:
            raise InvalidArgument(f"block must be one of {BLOCKS}, got {self.block!r}")
        width, heads = self.hidden
        if width % heads:
            raise InvalidArgument(f"width {width} is not a multiple of {heads} heads")

    @property
    def config_id(self) -> str:
        """Stable identifier, e.g. ``cnn-n2-h384``, ``crnn-n1,2-h512,256``, ``rnn-frames-n1-h128``,
        ``transformer-n4-h192,4`` (depth 4, width 192, 4 heads; patch encoder) and
        ``transformer-conformer-n2-h144,4``."""
        layers = ",".join(map(str, self.layers))
        hidden = ",".join(map(str, self.hidden))
        variant = "-frames" if self.rnn_input == "frames" else ""
        if self.block == "conformer":
            variant = "-conformer"
        return f"{self.family}{variant}-n{layers}-h{hidden}"

    @property
    def num_layers_text(self) -> str:
        return ",".join(map(str, self.layers))

    @property
    def hidden_size_text(self) -> str:
        return ",".join(map(str, self.hidden))


def _conv_blocks(n: int, channels: int) -> nn.Sequential:
    blocks: list[nn.Module] = []
    in_ch = 1
    for _ in range(n):
        blocks += [
            nn.Conv2d(in_ch, channels, kernel_size=3, stride=1, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        in_ch = channels
    return nn.Sequential(*blocks)


class MLP(nn.Module):
    def __init__(self, n: int, h: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(N_MELS * N_FRAMES, h), nn.ReLU()]
        for _ in range(n - 1):
            layers += [nn.Linear(h, h), nn.ReLU()]
        layers += [nn.Linear(h, N_CLASSES), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self, n: int, h: int) -> None:
        super().__init__()
        self.features = _conv_blocks(n, h)
        out = h * (N_MELS >> n) * (N_FRAMES >> n)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(out, N_CLASSES), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class RNN(nn.Module):
    """GRU classifier. ``flat``: the whole spectrogram as one step (the authors' choice);
    ``frames``: 64 steps of 128 mel features (a real recurrence)."""

    def __init__(self, n: int, h: int, rnn_input: str = "flat") -> None:
        super().__init__()
        self.rnn_input = rnn_input
        features = N_MELS * N_FRAMES if rnn_input == "flat" else N_MELS
        self.gru = nn.GRU(features, h, num_layers=n, batch_first=True)
        self.head = nn.Sequential(nn.Linear(h, N_CLASSES), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rnn_input == "flat":
            seq = x.flatten(1).unsqueeze(1)  # (batch, 1, 8192)
        else:
            seq = x.squeeze(1).transpose(1, 2)  # (batch, 64 frames, 128 mels)
        out, _ = self.gru(seq)
        return self.head(out[:, -1])


class CRNN(nn.Module):
    def __init__(self, n_conv: int, n_rnn: int, h_conv: int, h_rnn: int) -> None:
        super().__init__()
        self.features = _conv_blocks(n_conv, h_conv)
        self.gru = nn.GRU(h_conv, h_rnn, num_layers=n_rnn, batch_first=True)
        self.head = nn.Sequential(nn.Linear(h_rnn, N_CLASSES), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.features(x)  # (batch, channels, mels', frames')
        seq = maps.flatten(2).permute(0, 2, 1)  # (batch, positions, channels)
        out, _ = self.gru(seq)
        return self.head(out[:, -1])


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised model for ``config`` (on the CPU, float32)."""
    if config.family == "mlp":
        return MLP(config.layers[0], config.hidden[0])
    if config.family == "cnn":
        return CNN(config.layers[0], config.hidden[0])
    if config.family == "rnn":
        return RNN(config.layers[0], config.hidden[0], config.rnn_input)
    if config.family == "transformer":
        kind = Conformer if config.block == "conformer" else PatchTransformer
        return kind(config.layers[0], config.hidden[0], config.hidden[1])
    return CRNN(config.layers[0], config.layers[1], config.hidden[0], config.hidden[1])


def count_params(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
