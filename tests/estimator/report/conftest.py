"""Synthetic measurement stores for the report tests.

By default the data are built so that every claim C1-C6 and both questions hold; keyword knobs
build data that contradict one claim at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from joulecast.measurement import Row, TraceSample
from joulecast.store import MeasurementStore

SAMPLES = 1578
IDLE_W = 15.0

# per family: forward FLOPs per sample and params (CNN/CRNN params deliberately not tied to FLOPs)
CONFIGS = {
    "mlp": ([8e6, 16e6, 34e6, 60e6, 120e6, 240e6], None),
    "rnn": ([6e6, 24e6, 50e6, 100e6, 160e6, 300e6], None),
    "cnn": ([0.05e9, 0.2e9, 0.5e9, 1e9, 3e9, 8e9], [1.2e6, 0.3e6, 2.5e6, 0.8e6, 5e6, 0.5e6]),
    "crnn": ([0.03e9, 0.1e9, 0.4e9, 1.2e9, 4e9], [0.6e6, 0.2e6, 1.5e6, 0.4e6, 0.9e6]),
}
# energy per FLOP (J/FLOP) at test and training: MLP/RNN steep, CNN shallow, CRNN between
SLOPE = {
    "mlp": (1e-10, 2e-10),
    "rnn": (1e-10, 2e-10),
    "cnn": (5e-12, 1e-11),
    "crnn": (2e-11, 4e-11),
}


def _power(family: str, phase: str, i: int, overlap_mlp: bool) -> float:
    if family in ("mlp", "rnn", "rnn-frames") and not (overlap_mlp and family == "mlp"):
        return (60.0 + 1.0 * i) if phase == "train" else (28.0 + 1.0 * i)
    if family == "mlp":  # overlapping sets
        return 40.0 + 1.5 * i + (0.5 if phase == "train" else 0.0)
    return (42.0 + 1.5 * i) if phase == "train" else (41.0 + 1.5 * i)


def _make(
    path: Path,
    falling: tuple[str, ...] = (),
    overlap_mlp: bool = False,
    estimated: bool = False,
    cpu: bool = False,
    frames: str | None = "dense",
    sizes: str | None = "linear",
    traces: bool = True,
    transformers: bool = False,
) -> Path:
    rng = np.random.default_rng(7)
    store = MeasurementStore(path)
    entries: list[tuple[Row, tuple[TraceSample, ...]]] = []

    def add(
        family: str, variant: str, i: int, flops: float, params: float, phase: str,
        energy: float, power: float, samples: int = SAMPLES, repeat: int = 0, trace: bool = False,
    ) -> None:  # fmt: skip
        duration = energy / power
        log_e = math.log10(energy)
        gpu = None if cpu else float(np.clip(15 + 15 * log_e + rng.normal(0, 0.5), 1, 99))
        if cpu:
            mem = None
        elif family in ("mlp", "rnn"):
            mem = 5 + 8 * log_e
        elif family == "cnn":
            mem = 40 - 8 * log_e
        else:
            mem = 20 + float(rng.normal(0, 3))
        config_id = f"{family}-{i}"
        samples_trace: tuple[TraceSample, ...] = ()
        if trace:
            t = np.linspace(0, duration, 25)
            samples_trace = tuple(
                TraceSample(
                    t_s=float(x), power_w=float(power + rng.normal(0, 1.5)), gpu_util_pct=gpu
                )
                for x in t
            )
        source = (
            "estimate-codecarbon-tdp" if estimated else ("rapl" if cpu else "nvml-energy-counter")
        )
        row = Row(
            run_key=f"synth/{config_id}/{variant}/{phase}/s{samples}/r{repeat}",
            plan="synth", config_id=config_id, family=family, variant=variant,
            num_layers=str(1 + i), hidden_size=str(128 * (i + 1)), phase=phase, repeat=repeat,
            samples=samples, batch_size=8, epochs=1, status="ok",
            hardware="cpu-test" if cpu else "synthetic-t4", device="cpu" if cpu else "cuda:0",
            flops_forward=int(flops), flops_train=int(3 * flops), params=int(params),
            duration_s=duration, energy_j=energy, energy_source=source,
            energy_is_estimate=estimated, idle_power_w=IDLE_W,
            energy_dynamic_j=energy - IDLE_W * duration, power_mean_w=power,
            gpu_util_mean=gpu, mem_util_mean=mem, device_name=None if cpu else "Tesla T4",
            cpu_model="Synthetic CPU",
        )  # fmt: skip
        entries.append((row, samples_trace))

    for family, (flops_list, params_list) in CONFIGS.items():
        for phase_index, phase in enumerate(("test", "train")):
            k = SLOPE[family][phase_index]
            mult = 3 if phase == "train" else 1
            energies = [
                5.0 + k * f * mult * SAMPLES * float(rng.lognormal(0, 0.02)) for f in flops_list
            ]
            if family in falling:
                energies = energies[::-1]
            for i, (f, e) in enumerate(zip(flops_list, energies, strict=True)):
                params = f / 2 if params_list is None else params_list[i]
                power = _power(family, phase, i, overlap_mlp)
                trace = traces and i == len(flops_list) - 1
                add(family, "paper", i, f, params, phase, e, power, trace=trace)
                if family == "mlp" and i == 0:
                    add(family, "paper", i, f, params, phase, e * 1.01, power, repeat=1)
                if sizes and family in ("mlp", "cnn") and i in (1, 2):
                    per_sample = (e - 5.0) / SAMPLES
                    for n in (200, 400, 800):
                        extra = 0.0 if sizes == "linear" else per_sample * n * (SAMPLES - n) / 300
                        add(family, "paper", i, f, params, phase, 5.0 + per_sample * n + extra,
                            power, samples=n)  # fmt: skip
    if frames:
        like_dense = frames == "dense"
        flops_list = [20e6, 60e6, 120e6, 200e6, 320e6]
        for phase_index, phase in enumerate(("test", "train")):
            mult = 3 if phase == "train" else 1
            k = SLOPE["rnn" if like_dense else "cnn"][phase_index]
            for i, f in enumerate(flops_list):
                e = 5.0 + k * f * mult * SAMPLES
                params = f / 2 if like_dense else [1e6, 0.2e6, 3e6, 0.5e6, 0.8e6][i]
                power = _power("rnn-frames" if like_dense else "cnn", phase, i, False)
                add("rnn", "frames", i + 10, f, params, phase, e, power)
    if transformers:  # the transformer family: paper variant, its own slope between CNN and MLP
        for phase_index, phase in enumerate(("test", "train")):
            mult = 3 if phase == "train" else 1
            for i, f in enumerate([18e6, 80e6, 250e6, 900e6]):
                e = 5.0 + SLOPE["crnn"][phase_index] * f * mult * SAMPLES
                power = _power("transformer", phase, i, False)
                add("transformer", "paper", i + 20, f, f / 20, phase, e, power)
    store.put_rows(entries)
    store.close()
    return path


@pytest.fixture
def make_store(tmp_path: Path) -> Callable[..., Path]:
    """``make_store(name="m.db", **knobs) -> Path`` of a synthetic measurement store."""

    def factory(name: str = "measurements.db", **knobs: object) -> Path:
        return _make(tmp_path / name, **knobs)  # type: ignore[arg-type]

    return factory
