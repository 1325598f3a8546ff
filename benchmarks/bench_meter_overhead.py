"""Overhead of the meter's background sampler on a training epoch.

Trains a small real model (the paper's smallest MLP on mel-shaped inputs, CPU) for one epoch
repeatedly, alternating "sampler off" and "sampler on" in the same process, and prints the
ratio of median epoch times. The sampler runs the NVML meter's real code path against a
replayed trace (``--probe replay``) or reads psutil's CPU load (``--probe psutil``), so the
thread does real work on a machine without a GPU. Goal: <= 1 % at 100 ms sampling.

    .venv/bin/python benchmarks/bench_meter_overhead.py [--interval 0.1] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from collector.meters.replay import ReplayMeter
from collector.meters.sampler import Sampler
from joulecast.measurement import TraceSample

TRACE = Path(__file__).parents[1] / "tests" / "data" / "traces" / "t4_epoch.json"


def make_epoch(samples: int, batch_size: int = 8):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8192, 512), nn.ReLU(), nn.Linear(512, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.randn(samples, 1, 128, 64)
    y = (torch.rand(samples, 10) > 0.7).float()

    def epoch() -> float:
        started = time.perf_counter()
        for i in torch.randperm(samples).split(batch_size):
            optimiser.zero_grad()
            loss_fn(model(x[i]), y[i]).backward()
            optimiser.step()
        return time.perf_counter() - started

    return epoch


def make_probe(kind: str):
    if kind == "psutil":
        import psutil

        return lambda t: TraceSample(t_s=t, power_w=None, gpu_util_pct=psutil.cpu_percent(None))
    meter = ReplayMeter(TRACE)  # the NVML meter's device adapter over the fake pynvml
    return meter._device.probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=0.1, help="sampling interval, s")
    parser.add_argument("--repeats", type=int, default=7, help="epochs per arm")
    parser.add_argument("--samples", type=int, default=400, help="samples per epoch")
    parser.add_argument("--probe", choices=("replay", "psutil"), default="replay")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    epoch = make_epoch(args.samples)
    probe = make_probe(args.probe)
    epoch()  # warm-up
    off, on, samples = [], [], []
    for repeat in range(args.repeats):
        # ABBA order: a slow drift of the machine's speed does not favour either arm.
        for sampling in (False, True) if repeat % 2 == 0 else (True, False):
            if not sampling:
                off.append(epoch())
                continue
            sampler = Sampler(probe, interval_s=args.interval).start()
            on.append(epoch())
            samples.append(len(sampler.stop()))
    ratio = statistics.median(on) / statistics.median(off)
    print(
        f"probe={args.probe} interval={args.interval}s torch_threads={torch.get_num_threads()} "
        f"epoch off={statistics.median(off):.3f}s on={statistics.median(on):.3f}s "
        f"samples/epoch={statistics.median(samples):.0f} "
        f"overhead={100 * (ratio - 1):+.2f}% (ratio {ratio:.4f})"
    )
    best = min(on) / min(off)
    spread = (max(off) - min(off)) / statistics.median(off)
    print(f"best-of ratio {best:.4f}; epoch-to-epoch spread with the sampler off {spread:.1%}")
    started = time.perf_counter()
    for _ in range(1000):
        probe(0.0)
    probe_s = (time.perf_counter() - started) / 1000
    print(
        f"one probe call: {probe_s * 1e6:.1f} us, i.e. {100 * probe_s / args.interval:.3f} % "
        f"of one core at {args.interval}s sampling (the sampler's direct cost)"
    )


if __name__ == "__main__":
    main()
