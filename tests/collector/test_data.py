"""The data front end on real wav files written by the test."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from collector.data import (
    CLASSES,
    CLIP_SAMPLES,
    SAMPLE_RATE,
    SpectrogramSet,
    desed_clips,
    mel_features,
    select_clips,
    synthetic_clips,
)
from joulecast.errors import InvalidArgument


def make_desed(root: Path, entries: list[tuple[str, str, float, int, int]]) -> Path:
    """entries: (filename, labels, seconds, sample_rate, channels)."""
    (root / "metadata" / "train").mkdir(parents=True)
    audio = root / "audio" / "train" / "weak"
    audio.mkdir(parents=True)
    lines = ["filename\tevent_labels"]
    rng = np.random.default_rng(1)
    for name, labels, seconds, rate, channels in entries:
        data = 0.1 * rng.standard_normal((int(seconds * rate), channels)).astype(np.float32)
        sf.write(audio / name, data, rate)
        lines.append(f"{name}\t{labels}")
    (root / "metadata" / "train" / "weak.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_desed_reader_builds_multi_hot_targets_and_fixed_shapes(tmp_path: Path) -> None:
    root = make_desed(
        tmp_path,
        [
            ("a.wav", "Dog,Speech", 10.0, SAMPLE_RATE, 1),
            ("b.wav", "Cat", 3.5, SAMPLE_RATE, 2),  # short and stereo: padded, mixed down
            ("c.wav", "Frying,Blender,Vacuum_cleaner", 12.0, SAMPLE_RATE, 1),  # cropped
        ],
    )
    clips = desed_clips(root)
    assert [c.name for c in clips] == ["a.wav", "b.wav", "c.wav"]
    assert clips[0].targets[CLASSES.index("Dog")] == 1.0
    assert clips[0].targets[CLASSES.index("Speech")] == 1.0
    assert sum(clips[0].targets) == 2
    assert sum(clips[2].targets) == 3
    assert clips[1].load().ndim == 1
    data = SpectrogramSet(clips)
    x, y = data[1]
    assert x.shape == (1, 128, 64) and x.dtype == torch.float32
    assert y.shape == (10,)
    assert float(x[:, :, -1].abs().sum()) > 0  # 64 frames = 0.37 s: inside the 3.5 s of audio


def test_desed_reader_refuses_wrong_rate_layout_and_labels(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a DESED folder"):
        desed_clips(tmp_path)
    root = make_desed(tmp_path / "rate", [("a.wav", "Dog", 1.0, 16_000, 1)])
    with pytest.raises(InvalidArgument, match="sample rate 16000 Hz, expected 44100"):
        desed_clips(root)
    root = make_desed(tmp_path / "label", [("a.wav", "Unicorn", 1.0, SAMPLE_RATE, 1)])
    with pytest.raises(InvalidArgument, match="unknown label 'Unicorn'"):
        desed_clips(root)


def test_cropped_front_end_equals_the_full_clip_computation() -> None:
    audio = synthetic_clips(2)[1].load()
    assert audio.shape == (CLIP_SAMPLES,)
    fast, full = mel_features(audio), mel_features(audio, full_clip=True)
    assert fast.shape == full.shape == (1, 128, 64)
    np.testing.assert_allclose(fast, full, rtol=1e-4, atol=1e-5)


def test_cached_and_on_the_fly_sets_agree() -> None:
    clips = synthetic_clips(3)
    cached, live = SpectrogramSet(clips), SpectrogramSet(clips, features="on-the-fly")
    for i in range(3):
        torch.testing.assert_close(cached[i][0], live[i][0], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(cached[i][1], live[i][1])


def test_synthetic_set_is_deterministic_and_paper_sized() -> None:
    a, b = synthetic_clips(), synthetic_clips()
    assert len(a) == 1578
    assert a[7].targets == b[7].targets
    np.testing.assert_array_equal(a[7].load(), b[7].load())
    with pytest.raises(InvalidArgument, match="2000 samples asked"):
        select_clips(a, 2000)


def test_mel_features_are_librosas_numbers() -> None:
    """Computed in numpy, they are what librosa's melspectrogram gives with these settings."""
    librosa = pytest.importorskip("librosa")
    from collector.data import _SAMPLES_FOR_FRAMES, HOP, N_FFT, N_FRAMES, N_MELS, fit_to_clip

    audio = synthetic_clips(3)[2].load()
    want = librosa.feature.melspectrogram(
        y=fit_to_clip(audio)[:_SAMPLES_FOR_FRAMES], sr=SAMPLE_RATE, n_fft=N_FFT,
        win_length=N_FFT, hop_length=HOP, window="hamming", center=True, pad_mode="constant",
        power=1.0, n_mels=N_MELS, fmin=0.0, fmax=SAMPLE_RATE / 2, htk=True, norm=None,
    )[:, :N_FRAMES][None].astype(np.float32)  # fmt: skip
    got = mel_features(audio)
    assert got.shape == want.shape == (1, 128, 64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * float(want.max()))


def test_a_clips_head_is_the_start_of_the_clip(tmp_path: Path) -> None:
    """Cached features read only a clip's first 0.39 s: the same samples as the whole clip's
    start, synthetic or read from a wav file."""
    synthetic = synthetic_clips(2)[1]
    np.testing.assert_array_equal(synthetic.first(17_152), synthetic.load()[:17_152])
    assert synthetic.first(10 * CLIP_SAMPLES).shape == (CLIP_SAMPLES,)
    root = make_desed(tmp_path, [("a.wav", "Dog", 1.0, SAMPLE_RATE, 2)])
    wav = desed_clips(root)[0]
    np.testing.assert_array_equal(wav.first(17_152), wav.load()[:17_152])
    assert wav.load().shape == (SAMPLE_RATE,)
