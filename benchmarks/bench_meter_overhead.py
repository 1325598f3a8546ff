"""What measuring costs: the meter threads' own CPU, and the slowdown of training steps.

    .venv/bin/python benchmarks/bench_meter_overhead.py [--pairs 30] [--block-s 0.4]

The meters are opened exactly as the collector opens them (``collector.meters.select``):

- ``cpu-time``: the meter this CPU machine's campaign uses (no thread; two clock reads);
- ``cpu-time+codecarbon``: the campaign's ``--with-codecarbon`` (CodeCarbon's timer thread,
  one ``threading.Timer`` per power sample, every 0.2 s);
- ``replay@0.1s`` and ``replay@0.01s``: the NVML meter and its sampler thread, at the default
  interval and at 10 ms, on the fake ``pynvml`` that replays a recorded T4 trace (the machine
  has no GPU; everything above the driver calls is the code that runs on a GPU).

Each configuration is compared with no meter at all in ``--pairs`` pairs: one block of training
steps (the paper's smallest MLP on mel-shaped inputs, torch pinned to one thread as the collector
does) without a meter, and one block of the same steps inside a meter window, the pair's order
drawn at random. A pair's ratio is wall(on) / wall(off), the window's opening and closing
included; the slowdown is the geometric mean of the ratios with a 95 % confidence interval
(Student t on the log ratios, and a percentile bootstrap as a check). Pairing cancels the slow
drift of a shared machine's speed; what is left shows in the width of the interval.

Meter threads' CPU: the process's utime + stime (``/proc/self/stat``; it keeps the time of
threads that have exited, such as CodeCarbon's timers) minus the main thread's
(``/proc/self/task/<tid>/stat``), summed over the meter-on blocks; for the NVML sampler thread,
also its own ``/proc/self/task/<tid>/stat`` and the nanosecond run time of its ``schedstat``,
read just before the window closes. ``stat`` counts clock ticks (10 ms), so small totals are
coarse: the ``schedstat`` figure is the precise one. Per sample = the sampler thread's CPU over
the samples the thread took; share of a core = CPU seconds over the blocks' wall seconds.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from collector.meters.base import EnergyMeter
from collector.meters.cputime import pin_torch_threads
from collector.meters.select import open_meter

TRACE = Path(__file__).resolve().parents[1] / "tests" / "data" / "traces" / "t4_epoch.json"
TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
T_975 = {
    5: 2.571,
    10: 2.228,
    15: 2.131,
    20: 2.086,
    25: 2.060,
    30: 2.042,
    40: 2.021,
    60: 2.000,
    120: 1.980,
}
"""Two-sided 95 % Student t quantiles by degrees of freedom (the next lower entry is used)."""


def _t975(df: int) -> float:
    if df < 5:
        return {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}.get(df, math.inf)
    return T_975[max(k for k in T_975 if k <= df)] if df < 120 else 1.960


def _stat_s(path: str) -> float:
    """utime + stime in seconds from a /proc stat file (fields 14 and 15)."""
    with open(path) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def _schedstat_s(tid: int) -> float:
    """The thread's time on a CPU in seconds (nanoseconds in schedstat's first field)."""
    with open(f"/proc/self/task/{tid}/schedstat") as handle:
        return int(handle.read().split()[0]) * 1e-9


def _tids() -> set[int]:
    return {int(t) for t in os.listdir("/proc/self/task")}


def make_steps(batch_size: int = 8, samples: int = 256) -> Callable[[int], None]:
    """``steps(n)`` runs n training steps of the paper's smallest MLP (mlp n1 h512)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8192, 512), nn.ReLU(), nn.Linear(512, 10))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    x = torch.randn(samples, 1, 128, 64)
    y = (torch.rand(samples, 10) > 0.7).float()
    batches = samples // batch_size
    state = {"i": 0}

    def steps(n: int) -> None:
        for _ in range(n):
            i = state["i"] % batches
            state["i"] += 1
            xb, yb = (
                x[i * batch_size : (i + 1) * batch_size],
                y[i * batch_size : (i + 1) * batch_size],
            )
            optimiser.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimiser.step()

    return steps


@dataclass
class Arm:
    """One meter configuration and what its pairs measured."""

    name: str
    opener: Callable[[], EnergyMeter]
    ratios: list[float] = field(default_factory=list)
    on_wall_s: float = 0.0
    off_helper_cpu_s: float = 0.0
    on_helper_cpu_s: float = 0.0
    sampler_stat_s: float = 0.0
    sampler_sched_s: float = 0.0
    samples: int = 0
    thread_samples: int = 0
    sampler_threads: int = 0


def run_arm(arm: Arm, steps: Callable[[int], None], n_steps: int, pairs: int, seed: int) -> None:
    main_tid = threading.get_native_id()
    main_stat = f"/proc/self/task/{main_tid}/stat"
    rng = random.Random(seed)
    meter = arm.opener()
    try:
        steps(n_steps)  # the meter's first window costs what a cold start costs: not counted
        for pair in range(pairs):
            walls = {}
            for on in (True, False) if rng.random() < 0.5 else (False, True):
                helper0 = _stat_s("/proc/self/stat") - _stat_s(main_stat)
                before = _tids()
                started = time.perf_counter()
                if on:
                    meter.begin_window(f"pair-{pair}")
                steps(n_steps)
                if on:
                    paused = time.perf_counter()
                    threads = sorted(_tids() - before)
                    stat_s = [_stat_s(f"/proc/self/task/{t}/stat") for t in threads]
                    sched_s = [_schedstat_s(t) for t in threads]
                    bookkeeping_s = time.perf_counter() - paused
                    measurement = meter.end_window(f"pair-{pair}")
                    walls[on] = time.perf_counter() - started - bookkeeping_s
                    arm.sampler_threads += len(threads)
                    arm.sampler_stat_s += sum(stat_s)
                    arm.sampler_sched_s += sum(sched_s)
                    # The window's first and last samples are taken by the main thread.
                    arm.samples += len(measurement.trace)
                    arm.thread_samples += max(0, len(measurement.trace) - 2)
                else:
                    walls[on] = time.perf_counter() - started
                helper_s = _stat_s("/proc/self/stat") - _stat_s(main_stat) - helper0
                if on:
                    arm.on_helper_cpu_s += helper_s
                    arm.on_wall_s += walls[on]
                else:
                    arm.off_helper_cpu_s += helper_s
            arm.ratios.append(walls[True] / walls[False])
    finally:
        meter.close()


def interval(
    ratios: list[float], seed: int
) -> tuple[float, tuple[float, float], tuple[float, float]]:
    """Geometric mean ratio, its t-based 95 % interval and a percentile-bootstrap 95 % one."""
    logs = np.log(np.asarray(ratios))
    n = len(logs)
    mean = float(logs.mean())
    half = _t975(n - 1) * float(logs.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    rng = np.random.default_rng(seed)
    boots = logs[rng.integers(0, n, size=(10_000, n))].mean(axis=1)
    low, high = np.percentile(boots, [2.5, 97.5])
    return (
        math.exp(mean),
        (math.exp(mean - half), math.exp(mean + half)),
        (math.exp(float(low)), math.exp(float(high))),
    )


def arms(with_codecarbon: bool) -> list[Arm]:
    out = [Arm("cpu-time", lambda: open_meter("cpu-time"))]
    if with_codecarbon:
        out.append(Arm("cpu-time+codecarbon", lambda: open_meter("cpu-time", with_codecarbon=True)))
    for interval_s in (0.1, 0.01):
        out.append(
            Arm(
                f"replay@{interval_s:g}s",
                lambda s=interval_s: open_meter("replay", trace=TRACE, sample_interval_s=s),
            )
        )
    return out


def _pct(x: float) -> str:
    return f"{100 * (x - 1):+.2f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30, help="on/off pairs per meter")
    parser.add_argument("--block-s", type=float, default=0.4, help="seconds of steps per block")
    parser.add_argument("--no-codecarbon", action="store_true", help="skip the CodeCarbon arm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    pin_torch_threads()
    steps = make_steps()
    steps(20)  # warm-up
    started = time.perf_counter()
    steps(20)
    per_step_s = (time.perf_counter() - started) / 20
    n_steps = max(1, round(args.block_s / per_step_s))
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{os.cpu_count()} CPUs; torch threads {torch.get_num_threads()}; "
        f"{n_steps} steps per block ({1e3 * per_step_s:.1f} ms a step); "
        f"{args.pairs} pairs per meter, order random"
    )
    print(
        f"{'meter':<22}{'slowdown':>10}{'95% CI (t)':>22}{'95% CI (boot)':>22}"
        f"{'sd/pair':>9}{'threads cpu':>13}{'off':>8}{'samples':>9}{'us/sample':>11}"
        f"{'stat us':>10}"
    )
    for i, arm in enumerate(arms(not args.no_codecarbon)):
        try:
            run_arm(arm, steps, n_steps, args.pairs, args.seed + i)
        except Exception as err:  # e.g. CodeCarbon missing: say so, go on with the others
            print(f"{arm.name:<22}not measured: {type(err).__name__}: {err}")
            continue
        ratio, t_ci, boot_ci = interval(arm.ratios, args.seed)
        sd = statistics.stdev(arm.ratios) if len(arm.ratios) > 1 else float("nan")
        share = arm.on_helper_cpu_s / arm.on_wall_s
        per_sample = arm.sampler_sched_s / arm.thread_samples if arm.thread_samples else None
        print(
            f"{arm.name:<22}{_pct(ratio):>10}{f'[{_pct(t_ci[0])}, {_pct(t_ci[1])}]':>22}"
            f"{f'[{_pct(boot_ci[0])}, {_pct(boot_ci[1])}]':>22}{100 * sd:>8.1f}%"
            f"{100 * share:>12.2f}%{100 * arm.off_helper_cpu_s / arm.on_wall_s:>7.2f}%"
            f"{arm.samples:>9}"
            + (f"{1e6 * per_sample:>11.0f}" if per_sample else f"{'-':>11}")
            + (
                f"{1e6 * arm.sampler_stat_s / arm.thread_samples:>10.0f}"
                if arm.thread_samples
                else f"{'-':>10}"
            )
        )
        if arm.samples:
            print(
                f"{'':<22}sampler thread: {1e3 * arm.sampler_sched_s:.1f} ms CPU (schedstat), "
                f"{1e3 * arm.sampler_stat_s:.0f} ms (stat ticks) in {arm.on_wall_s:.1f} s = "
                f"{100 * arm.sampler_sched_s / arm.on_wall_s:.3f} % of a core; "
                f"{arm.samples} samples, {arm.thread_samples} of them by the thread"
            )
    print(
        "slowdown: geometric mean of wall(on)/wall(off) per pair - 1 (window edges included); "
        "threads cpu: CPU of every thread but the main one while the meter was on, as a share "
        "of one core (/proc stat, 10 ms ticks), 'off' the same with no meter; us/sample: the "
        "sampler thread's schedstat CPU per sample ('stat us': the same from stat ticks)"
    )


if __name__ == "__main__":
    main()
