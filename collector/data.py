"""The data front end: DESED's weak training set or a synthetic set of the same shapes.

Audio (mono, 44.1 kHz, padded or cropped to 10 s) becomes a magnitude mel spectrogram
(n_fft 2048, Hamming window 2048, hop 256, 128 bands, 0-22050 Hz, power 1) of which the first
64 frames are kept: one (1, 128, 64) tensor per clip, 10 multi-hot targets.

Features are computed once and held in memory by default (``features="cached"``), so the
measured window holds the model's work and not the front end. ``features="on-the-fly"``
recomputes the mel spectrogram of the whole clip in every ``__getitem__``, as the authors'
loader did. Energy does not depend on audio content, so the synthetic set (deterministic
noise and tones) measures the same work as DESED.
"""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from collector.spectrogram import N_CLASSES, N_FRAMES, N_MELS
from joulecast.errors import InvalidArgument

log = logging.getLogger(__name__)

SAMPLE_RATE = 44_100
CLIP_SECONDS = 10
CLIP_SAMPLES = SAMPLE_RATE * CLIP_SECONDS
N_FFT = 2048
HOP = 256
DESED_CLIPS = 1578
CLASSES = (
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
)
assert len(CLASSES) == N_CLASSES
# The first 64 centred frames only see the first (63 * hop + n_fft / 2) samples: cropping the
# clip there before the STFT gives the very same 64 frames for a fraction of the work.
_SAMPLES_FOR_FRAMES = (N_FRAMES - 1) * HOP + N_FFT // 2


def mel_features(audio: np.ndarray, full_clip: bool = False) -> np.ndarray:
    """(1, 128, 64) float32 magnitude mel spectrogram of a mono clip at 44.1 kHz.

    The filterbank is HTK-scaled and unnormalised (torchaudio's MelSpectrogram defaults, which
    the authors used). ``full_clip`` computes all frames of 10 s first, as the authors did.
    Computed in numpy: the numbers librosa's ``melspectrogram`` gives with these settings (a
    test holds them to it) in half its time, without importing librosa.
    """
    clip = fit_to_clip(audio)
    if not full_clip:
        clip = clip[:_SAMPLES_FOR_FRAMES]
    return _mel_numpy(clip)[:, :N_FRAMES][None].astype(np.float32)


@functools.cache
def _htk_mel_filters(n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular HTK mel filters from 0 Hz to Nyquist, unnormalised
    (built once: built for every clip, they took half the time of a sweep's features)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    top_mel = 2595.0 * np.log10(1.0 + (SAMPLE_RATE / 2) / 700.0)
    mel_hz = 700.0 * (10.0 ** (np.linspace(0.0, top_mel, n_mels + 2) / 2595.0) - 1.0)
    widths = np.diff(mel_hz)
    ramps = mel_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    filters.setflags(write=False)
    return filters


@functools.cache
def _hamming() -> np.ndarray:
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    window.setflags(write=False)
    return window


def _mel_numpy(clip: np.ndarray) -> np.ndarray:
    """Magnitude mel spectrogram as librosa's ``melspectrogram(n_fft=2048, hop_length=256,
    window="hamming", center=True, pad_mode="constant", power=1, n_mels=128, htk=True,
    norm=None)`` computes it: periodic Hamming window, centred frames padded with zeros, power
    1, HTK filters without normalisation."""
    padded = np.pad(clip.astype(np.float64), N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    magnitude = np.abs(np.fft.rfft(frames * _hamming(), axis=1)).T
    return _htk_mel_filters() @ magnitude


def fit_to_clip(audio: np.ndarray) -> np.ndarray:
    """Pad with zeros or crop to exactly 10 s."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.shape[0] >= CLIP_SAMPLES:
        return audio[:CLIP_SAMPLES]
    return np.pad(audio, (0, CLIP_SAMPLES - audio.shape[0]))


@dataclass(frozen=True)
class Clip:
    """A clip source: ``load()`` returns mono float32 audio at 44.1 kHz; ``head(n)``, where
    given, its first ``n`` samples without making or reading the rest (cached features need
    the first 0.39 s of a 10 s clip)."""

    name: str
    targets: tuple[float, ...]
    load: Callable[[], np.ndarray]
    head: Callable[[int], np.ndarray] | None = None

    def first(self, samples: int) -> np.ndarray:
        """The clip's first ``samples`` samples (fewer if it is shorter)."""
        if self.head is not None:
            return self.head(samples)
        return self.load()[:samples]


def synthetic_clips(count: int = DESED_CLIPS, seed: int = 0) -> list[Clip]:
    """A deterministic stand-in for DESED: ``count`` clips of noise plus a tone, random labels."""
    rng = np.random.default_rng(seed)
    labels = rng.random((count, N_CLASSES)) < 0.2

    def make(i: int) -> Callable[[int], np.ndarray]:
        # A generator's first n normal draws are the first n of any longer draw: the head of a
        # clip is the same samples as the clip's start.
        def head(samples: int) -> np.ndarray:
            n = min(max(samples, 0), CLIP_SAMPLES)
            r = np.random.default_rng(seed * 1_000_003 + i)
            t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
            tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * (i % 40)) * t, dtype=np.float32)
            noise = 0.05 * r.standard_normal(n, dtype=np.float32)
            return tone + noise

        return head

    clips = []
    for i in range(count):
        head = make(i)
        load = functools.partial(head, CLIP_SAMPLES)
        clips.append(Clip(f"synthetic_{i:05d}", tuple(float(v) for v in labels[i]), load, head))
    return clips


def desed_clips(root: str | Path) -> list[Clip]:
    """Clips of a DESED folder: ``metadata/train/weak.tsv`` and ``audio/train/weak/*.wav``.

    Raises InvalidArgument naming what is missing or wrong (layout, unknown label, sample rate).
    """
    import soundfile as sf

    root = Path(root)
    tsv = root / "metadata" / "train" / "weak.tsv"
    audio_dir = root / "audio" / "train" / "weak"
    if not tsv.is_file():
        raise InvalidArgument(f"not a DESED folder: {tsv} does not exist")
    if not audio_dir.is_dir():
        raise InvalidArgument(f"not a DESED folder: {audio_dir} does not exist")
    index = {c: i for i, c in enumerate(CLASSES)}
    clips: list[Clip] = []
    with tsv.open(newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None or header[:2] != ["filename", "event_labels"]:
            raise InvalidArgument(f"{tsv}: expected header 'filename<TAB>event_labels'")
        for line_no, fields_ in enumerate(reader, start=2):
            if not fields_:
                continue
            if len(fields_) < 2:
                raise InvalidArgument(f"{tsv}:{line_no}: expected filename and labels")
            name, labels = fields_[0], fields_[1]
            targets = [0.0] * N_CLASSES
            for label in filter(None, (s.strip() for s in labels.split(","))):
                if label not in index:
                    raise InvalidArgument(f"{tsv}:{line_no}: unknown label {label!r}")
                targets[index[label]] = 1.0
            path = audio_dir / name
            if not path.is_file():
                raise InvalidArgument(f"{tsv}:{line_no}: audio file {path} is missing")
            # a wrong rate must fail before the sweep starts, not in the middle of it
            rate = sf.info(str(path)).samplerate
            if rate != SAMPLE_RATE:
                raise InvalidArgument(f"{path}: sample rate {rate} Hz, expected {SAMPLE_RATE} Hz")
            load, head = _wav_loader(path, sf)
            clips.append(Clip(name, tuple(targets), load, head))
    if not clips:
        raise InvalidArgument(f"{tsv} lists no clips")
    return clips


def _wav_loader(
    path: Path, sf: object
) -> tuple[Callable[[], np.ndarray], Callable[[int], np.ndarray]]:
    def head(samples: int) -> np.ndarray:
        audio, _ = sf.read(  # type: ignore[attr-defined]
            str(path), frames=samples, dtype="float32", always_2d=True
        )
        return audio.mean(axis=1)

    return functools.partial(head, -1), head


class SpectrogramSet(Dataset):
    """(features, targets) pairs; features (1, 128, 64) float32, targets (10,) float32."""

    def __init__(self, clips: Sequence[Clip], features: str = "cached") -> None:
        if features not in ("cached", "on-the-fly"):
            raise InvalidArgument(f"features must be 'cached' or 'on-the-fly', got {features!r}")
        self.clips = list(clips)
        self.on_the_fly = features == "on-the-fly"
        self.targets = torch.tensor([c.targets for c in self.clips], dtype=torch.float32)
        self._features: torch.Tensor | None = None
        if not self.on_the_fly:
            self._features = torch.from_numpy(
                np.stack([mel_features(c.first(_SAMPLES_FOR_FRAMES)) for c in self.clips])
            )

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._features is not None:
            return self._features[i], self.targets[i]
        return torch.from_numpy(mel_features(self.clips[i].load(), full_clip=True)), self.targets[i]


def select_clips(clips: Sequence[Clip], samples: int) -> list[Clip]:
    """The first ``samples`` clips; more than the set holds is an error (no silent repeats)."""
    if samples > len(clips):
        raise InvalidArgument(f"{samples} samples asked, the data set has {len(clips)} clips")
    return list(clips[:samples])
