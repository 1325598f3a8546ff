"""A known ground-truth energy model, different per family, to test that fits recover it.

Energy per sample per epoch: ``E = a_f + b_f·FLOPs_phase`` (J), times log-normal noise.
Utilisation ``u`` depends on family and size; power ``P = 30 W + 0.5 W/% · u``; duration
``t = E / P``. So both the affine family fits and the utilisation-aware model have a true form.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from estimator.dataset import Dataset, from_frame
from estimator.features import run_features
from joulecast.graph import GraphProfile

SLOPE_J_PER_FLOP = {"mlp": 4e-9, "rnn": 6e-9, "cnn": 3e-10, "crnn": 1e-9}
"""Ground-truth training slope b_f (test slope is 0.6 of it)."""
INTERCEPT_J = {"mlp": 0.004, "rnn": 0.006, "cnn": 0.01, "crnn": 0.008}
TEST_SLOPE_RATIO = 0.6
IDLE_W, K_W_PER_PCT = 30.0, 0.5


def make_profile(family: str, flops_forward: float, rng: np.random.Generator) -> GraphProfile:
    f = int(flops_forward)
    kinds = {
        "mlp": {"dense": f},
        "rnn": {"recurrent": int(f * 0.98), "dense": f - int(f * 0.98)},
        "cnn": {"conv": int(f * 0.9), "dense": int(f * 0.02), "other": f - int(f * 0.92)},
        "crnn": {"conv": int(f * 0.6), "recurrent": int(f * 0.35), "other": f - int(f * 0.95)},
    }[family]
    params = {"mlp": f // 2, "rnn": f // 2, "cnn": f // 400, "crnn": f // 1000}[family]
    steps = {"mlp": 0, "cnn": 0, "rnn": 1, "crnn": int(rng.choice([512, 2048]))}[family]
    return GraphProfile(
        family=family,
        family_reason="synthetic",
        params=params,
        flops_forward=f,
        flops_train=3 * f,
        flops_by_kind={k: kinds.get(k, 0) for k in ("conv", "dense", "recurrent", "other")},
        weight_bytes=4 * params,
        activation_bytes=int(f / (50 if family in ("cnn", "crnn") else 2000)) + 4096,
        arithmetic_intensity=f / (4 * params + f / 100 + 1),
        recurrent_steps=steps,
        depth=int(rng.integers(3, 30)),
        node_count=int(rng.integers(4, 60)),
    )


def true_energy_per_sample(family: str, flops_phase: float, phase: str) -> float:
    slope = SLOPE_J_PER_FLOP[family] * (1.0 if phase == "train" else TEST_SLOPE_RATIO)
    return INTERCEPT_J[family] + slope * flops_phase


def true_util_pct(family: str, flops_forward: float, phase: str) -> float:
    size = np.log10(flops_forward) - 6.0
    base = {"mlp": 20.0, "rnn": 25.0, "cnn": 55.0, "crnn": 45.0}[family]
    return float(np.clip(base + 12.0 * size + (10.0 if phase == "train" else 0.0), 5.0, 99.0))


FLOPS_RANGE = {"mlp": (2e6, 6e8), "rnn": (2e6, 6e8), "cnn": (5e7, 6e9), "crnn": (5e7, 3e9)}


def ground_truth_dataset(
    configs_per_family: int = 8,
    repeats: int = 2,
    noise: float = 0.05,
    seed: int = 0,
    with_util: bool = True,
    families: tuple[str, ...] = ("mlp", "cnn", "rnn", "crnn"),
    samples: int = 1578,
) -> Dataset:
    rng = np.random.default_rng(seed)
    records = []
    for family in families:
        lo, hi = FLOPS_RANGE[family]
        for i, flops in enumerate(np.geomspace(lo, hi, configs_per_family)):
            profile = make_profile(family, flops * rng.uniform(0.9, 1.1), rng)
            for phase in ("train", "test"):
                fp = profile.flops_train if phase == "train" else profile.flops_forward
                for repeat in range(repeats):
                    e = true_energy_per_sample(family, fp, phase) * rng.lognormal(0.0, noise)
                    u = true_util_pct(family, profile.flops_forward, phase)
                    u_obs = float(np.clip(u + rng.normal(0, 1.0), 0, 100))
                    t = e / (IDLE_W + K_W_PER_PCT * u_obs)
                    records.append(
                        {
                            "run_key": f"{family}-{i}-{phase}-{repeat}",
                            "config_id": f"{family}-{i}",
                            "repeat": repeat,
                            **run_features(
                                profile, phase=phase, batch_size=8, samples=samples, epochs=1
                            ),
                            "energy_j": e * samples,
                            "energy_per_sample_j": e,
                            "duration_s": t * samples,
                            "duration_per_sample_s": t,
                            "gpu_util_mean": u_obs if with_util else float("nan"),
                            "energy_source": "nvml-energy-counter",
                        }
                    )
    return from_frame("gpu-test", pd.DataFrame.from_records(records))
