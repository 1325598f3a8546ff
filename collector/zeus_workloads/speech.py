"""DeepSpeech2 as deepspeech.pytorch (SeanNaren, release V3) trains it on LibriSpeech.

Amodei et al. (2016)'s network in that implementation's default bidirectional configuration:

- input: one linear spectrogram per utterance, shape (1, 161, frames): 20 ms Hamming windows
  every 10 ms at 16 kHz (n_fft = 320, so 161 frequency bins);
- two convolutions of 32 channels, kernels 41x11 (stride 2x2, padding 20x5) and 21x11 (stride
  2x1, padding 10x5), each followed by batch norm and a hardtanh clipped to [0, 20];
- five bidirectional LSTM layers of 1,024 units over the 32 x 41 = 1,312 features that remain
  per time step (every layer but the first starts with a batch norm over its features); the two
  directions' outputs are summed, not concatenated;
- batch norm and a linear layer without bias to the 29 characters of ``labels.json`` (CTC
  blank, apostrophe, A-Z, space).

The trainer masks the padding of shorter utterances and packs the sequences; the graph is one
batch of equally long utterances, so neither appears (no FLOPs either way in the profiler's
convention). The network ends at the logits; CTC's log-softmax belongs to the loss.
"""

from __future__ import annotations

import torch
from torch import nn

SAMPLE_RATE_HZ = 16_000
WINDOW_S = 0.02
STRIDE_S = 0.01
FREQ_BINS = int(SAMPLE_RATE_HZ * WINDOW_S) // 2 + 1
"""161: the one-sided spectrum of a 320-sample window."""
CONV_CHANNELS = 32
RNN_LAYERS = 5
RNN_HIDDEN = 1024
CHARACTERS = 29
"""CTC blank, apostrophe, 26 letters, space (deepspeech.pytorch's ``labels.json``)."""


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


RNN_INPUT = CONV_CHANNELS * _out(_out(FREQ_BINS, 41, 2, 20), 21, 2, 10)
"""1,312 features per time step after the two convolutions."""


def frames_for(seconds: float) -> int:
    """Spectrogram frames of an utterance of ``seconds`` (centred STFT: 1 + samples // hop)."""
    return 1 + round(seconds * SAMPLE_RATE_HZ) // round(SAMPLE_RATE_HZ * STRIDE_S)


class _BatchNormFeatures(nn.Module):
    """Batch norm over the features of a (time, batch, features) sequence."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n, f = x.shape
        return self.norm(x.reshape(t * n, f)).reshape(t, n, f)


class _BiLSTM(nn.Module):
    """A bidirectional LSTM layer whose two directions are summed (T, N, H)."""

    def __init__(self, features: int, hidden: int, norm: bool) -> None:
        super().__init__()
        self.norm = _BatchNormFeatures(features) if norm else nn.Identity()
        self.lstm = nn.LSTM(features, hidden, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.norm(x))
        t, n, _ = out.shape
        return out.reshape(t, n, 2, -1).sum(dim=2)


class DeepSpeech2(nn.Module):
    """Spectrogram (N, 1, 161, frames) -> per-step character logits (frames', N, 29)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, CONV_CHANNELS, (41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(CONV_CHANNELS),
            nn.Hardtanh(0, 20),
            nn.Conv2d(CONV_CHANNELS, CONV_CHANNELS, (21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(CONV_CHANNELS),
            nn.Hardtanh(0, 20),
        )
        self.rnns = nn.Sequential(
            _BiLSTM(RNN_INPUT, RNN_HIDDEN, norm=False),
            *(_BiLSTM(RNN_HIDDEN, RNN_HIDDEN, norm=True) for _ in range(RNN_LAYERS - 1)),
        )
        self.norm = _BatchNormFeatures(RNN_HIDDEN)
        self.fc = nn.Linear(RNN_HIDDEN, CHARACTERS, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.conv(x)  # (N, 32, 41, T')
        n, c, f, t = maps.shape
        steps = maps.reshape(n, c * f, t).permute(2, 0, 1)  # (T', N, 1312)
        return self.fc(self.norm(self.rnns(steps)))
