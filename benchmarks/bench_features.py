"""The cached features of a sweep's clips: how long before the first window can start.

Every sweep and every ``calibrate`` first computes the mel features of its clips (1578 for the
paper's size), before its first window and inside a calibration's budget. Prints the time of
the whole set and per clip, a few rounds (the first one warms numpy's FFT plans up).

    .venv/bin/python benchmarks/bench_features.py [--clips 1578] [--rounds 3]
"""

from __future__ import annotations

import argparse
import platform
import time

from collector.data import SpectrogramSet, synthetic_clips
from collector.hardware import cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1578)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    clips = synthetic_clips(args.clips)
    print(f"{cpu_model()}, Python {platform.python_version()}: {args.clips} clips")
    for round_ in range(args.rounds):
        began = time.perf_counter()
        SpectrogramSet(clips)
        took_s = time.perf_counter() - began
        print(f"round {round_}: {took_s:.2f} s ({1000 * took_s / args.clips:.2f} ms a clip)")


if __name__ == "__main__":
    main()
