"""The transformer family: small AST/PaSST-like patch encoders and conformers.

Both read the paper's input, one (1, 128 mel, 64 frame) spectrogram per sample, and end like the
paper's models: mean over the sequence, a linear head, a sigmoid over 10 classes.

- :class:`PatchTransformer` cuts the spectrogram into 8 x 8 patches (a ``Conv2d`` with stride 8:
  16 x 8 = 128 tokens; AST's 16 x 16 patches would leave 32 tokens, too few for attention's
  quadratic cost to show on a 64-frame clip), adds a learned positional embedding and runs
  ``depth`` pre-norm encoder blocks (self-attention, then a 4 x width GELU feed-forward).
- :class:`Conformer` projects each of the 64 frames (128 mel features) to ``width`` and runs
  ``depth`` conformer blocks (Gulati et al. 2020: half feed-forward, self-attention, convolution
  module with a depthwise kernel of 15 frames, half feed-forward, layer norm), without the
  paper's relative positional encoding (the convolution module sees the order of the frames):
  a standard graph that both exporters and the profiler know.

A conformer is classified ``transformer``, not ``cnn`` or ``crnn`` (joulecast/graph/family.py):
attention defines the family whatever surrounds it, because its cost grows with the square of
the sequence length while the convolutions and dense layers around it grow linearly; the same
rule makes the patch encoders' convolutional patch embedding a front end, not a CNN.

Attention is written by hand with ``F.scaled_dot_product_attention`` (a packed q/k/v ``Linear``,
heads split by reshape): DeepSpeed counts it as its two matrix products, the graph profiler
counts the same, and the legacy ONNX export keeps it as plain MatMul/Softmax nodes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from collector.spectrogram import N_CLASSES, N_FRAMES, N_MELS

PATCH = 8
"""Patch side (mel bins and frames) of the patch encoders."""
N_TOKENS = (N_MELS // PATCH) * (N_FRAMES // PATCH)
FF_RATIO = 4
"""Feed-forward width as a multiple of the model width (ViT/AST and conformer use 4)."""
CONV_KERNEL = 15
"""Depthwise kernel of the conformer's convolution module, in frames."""


class SelfAttention(nn.Module):
    """Multi-head self-attention over (batch, tokens, width)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, width = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(b, t, self.heads, width // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.out(a.transpose(1, 2).reshape(b, t, width))


def _feed_forward(width: int, activation: type[nn.Module]) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(width),
        nn.Linear(width, FF_RATIO * width),
        activation(),
        nn.Linear(FF_RATIO * width, width),
    )


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block (ViT/AST)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads)
        self.ff = _feed_forward(width, nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm(x))
        return x + self.ff(x)


class ConformerBlock(nn.Module):
    """Half feed-forward, self-attention, convolution module, half feed-forward, layer norm."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.ff1 = _feed_forward(width, nn.SiLU)
        self.norm = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads)
        self.conv_norm = nn.LayerNorm(width)
        self.conv = nn.Sequential(
            nn.Conv1d(width, 2 * width, 1),
            nn.GLU(dim=1),
            nn.Conv1d(width, width, CONV_KERNEL, padding=CONV_KERNEL // 2, groups=width),
            nn.BatchNorm1d(width),
            nn.SiLU(),
            nn.Conv1d(width, width, 1),
        )
        self.ff2 = _feed_forward(width, nn.SiLU)
        self.out_norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        x = x + self.attention(self.norm(x))
        x = x + self.conv(self.conv_norm(x).transpose(1, 2)).transpose(1, 2)
        x = x + 0.5 * self.ff2(x)
        return self.out_norm(x)


class _Head(nn.Module):
    """Mean over the sequence, linear layer, sigmoid."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.linear = nn.Linear(width, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.linear(self.norm(x).mean(dim=1)))


class PatchTransformer(nn.Module):
    """AST/PaSST-like encoder: 8 x 8 patches (128 tokens), ``depth`` blocks of ``width``."""

    def __init__(self, depth: int, width: int, heads: int) -> None:
        super().__init__()
        self.patches = nn.Conv2d(1, width, kernel_size=PATCH, stride=PATCH)
        self.position = nn.Parameter(torch.randn(1, N_TOKENS, width) * 0.02)
        self.blocks = nn.Sequential(*(EncoderBlock(width, heads) for _ in range(depth)))
        self.head = _Head(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2)  # (batch, 128 tokens, width)
        return self.head(self.blocks(tokens + self.position))


class Conformer(nn.Module):
    """``depth`` conformer blocks over the 64 frames, each frame's 128 mels projected to ``width``."""

    def __init__(self, depth: int, width: int, heads: int) -> None:
        super().__init__()
        self.project = nn.Linear(N_MELS, width)
        self.blocks = nn.Sequential(*(ConformerBlock(width, heads) for _ in range(depth)))
        self.head = _Head(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.squeeze(1).transpose(1, 2)  # (batch, 64 frames, 128 mels)
        return self.head(self.blocks(self.project(frames)))
