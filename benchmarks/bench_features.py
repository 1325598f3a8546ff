"""The cached features of a sweep's clips: one clip at a time against a chunk at a time.

Every sweep and every ``calibrate`` first computes the mel features of its clips (1578 for the
paper's size): before the first window, inside the calibration's budget. Prints the time of
each way on the same clips, alternated, and checks that both give the same numbers.

    .venv/bin/python benchmarks/bench_features.py [--clips 1578] [--rounds 2]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from collector.data import _SAMPLES_FOR_FRAMES, cached_mel_features, mel_features, synthetic_clips
from collector.hardware import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1578)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clips = synthetic_clips(args.clips)
    print(f"{cpu_model()}, Python {platform.python_version()}: {args.clips} clips")
    for round_ in range(args.rounds):
        began = time.perf_counter()
        one = np.stack([mel_features(c.first(_SAMPLES_FOR_FRAMES)) for c in clips])
        one_s = time.perf_counter() - began
        began = time.perf_counter()
        chunked = cached_mel_features(clips)
        chunked_s = time.perf_counter() - began
        same = np.array_equal(one, chunked)
        print(
            f"round {round_}: one clip at a time {one_s:.2f} s, a chunk at a time "
            f"{chunked_s:.2f} s (x{one_s / chunked_s:.1f}); the same numbers: {same}"
        )


if __name__ == "__main__":
    main()
