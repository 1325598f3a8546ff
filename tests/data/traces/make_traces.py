"""Regenerate the recorded NVML traces (T4-like: 70 W board, ~10 W idle, ~60 W training).

Deterministic (seeded). Run: ``.venv/bin/python tests/data/traces/make_traces.py``. Rows every
100 ms; the energy counter (mJ) is the running integral of the held power, as the driver keeps it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
PERIOD_S = 0.1
COLUMNS = ["t_s", "energy_mj", "power_w", "gpu_util_pct", "mem_util_pct", "mem_used_mib"]
HEADER = {
    "device_name": "Tesla T4",
    "driver": "535.104.05",
    "nvml_version": "12.535.104.05",
    "memory_total_mib": 15360,
    "energy_counter": True,
    "power_limit_w": 70,  # the T4's default (and maximum) board power limit
    "columns": COLUMNS,
}


def phases_to_rows(phases: list[tuple[float, float, float, float, float, float]], seed: int):
    """phases: (seconds, power W, power noise W, gpu util %, mem util %, mem used MiB)."""
    rng = random.Random(seed)
    rows, t, energy_mj = [], 0.0, 123_456_789.0
    for seconds, power, noise, gpu, mem, used in phases:
        for _ in range(round(seconds / PERIOD_S)):
            p = min(70.0, max(0.0, power + rng.gauss(0, noise)))
            g = min(100, max(0, round(gpu + rng.gauss(0, 3 if gpu else 0))))
            m = min(100, max(0, round(mem + rng.gauss(0, 2 if mem else 0))))
            rows.append([round(t, 3), round(energy_mj), round(p, 2), g, m, used])
            energy_mj += p * PERIOD_S * 1000
            t += PERIOD_S
    rows.append([round(t, 3), round(energy_mj), rows[-1][2], rows[-1][3], rows[-1][4], rows[-1][5]])
    return rows


def write(name: str, phases, seed: int, **extra) -> None:
    doc = {"name": name, **HEADER, **extra, "rows": phases_to_rows(phases, seed)}
    text = json.dumps(doc, separators=(",", ":")).replace("],[", "],\n[")
    (HERE / f"{name}.json").write_text(text + "\n")


if __name__ == "__main__":
    # Steady training: 60 W +- 0.5 W, 95 % GPU util, 40 % memory util.
    write("t4_steady", [(10.0, 60.0, 0.5, 95, 40, 2100)], seed=1)
    # Idle board: ~10 W, nothing running, CUDA context resident.
    write("t4_idle", [(5.0, 10.0, 0.2, 0, 0, 420)], seed=2)
    # An epoch: idle, ramp, training, test pass (lower power), idle.
    write(
        "t4_epoch",
        [
            (2.0, 10.0, 0.2, 0, 0, 420),
            (0.5, 35.0, 3.0, 60, 20, 1800),
            (8.0, 62.0, 2.0, 96, 42, 2300),
            (4.0, 38.0, 2.0, 70, 25, 2300),
            (1.5, 11.0, 0.3, 0, 0, 2300),
        ],
        seed=3,
    )
    # A calibration: idle, training, a test pass, on a board nothing else computes on (NVML
    # lists no compute process before ours starts).
    write(
        "t4_calibrate",
        [
            (1.0, 10.0, 0.2, 0, 0, 420),
            (6.0, 58.0, 2.0, 94, 40, 2300),
            (2.0, 36.0, 2.0, 65, 25, 2300),
        ],
        seed=4,
        compute_pids=[],
    )
    # The same board while another process (pid 4242) trains on it.
    write("t4_busy", [(3.0, 45.0, 1.0, 80, 30, 3000)], seed=5, compute_pids=[4242])
