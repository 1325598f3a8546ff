"""The input every measured model takes: one mel spectrogram per sample, and the 10 classes of
its multi-label output. Its own module so that the families (:mod:`collector.models`,
:mod:`collector.transformers`) and the data front end (:mod:`collector.data`) read one
definition without importing each other."""

from __future__ import annotations

N_MELS = 128
N_FRAMES = 64
N_CLASSES = 10
INPUT_SHAPE = (1, N_MELS, N_FRAMES)
"""One sample: (channels, mel bands, frames)."""
