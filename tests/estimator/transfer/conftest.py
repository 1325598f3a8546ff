"""Rows made by the transfer model itself from known parameters, on real graphs' profiles: a
fit must find parameters that answer a GPU it never saw as the true ones do."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from collector.models import INPUT_SHAPE, ModelConfig, build_model
from estimator.transfer.data import gpu_of, query_arrays, work_of
from estimator.transfer.gpu import GpuRates
from estimator.transfer.model import initial_params, predict
from joulecast.graph import GraphProfile, profile_graph
from joulecast.hardware import find_gpu
from joulecast.weightless import export_weightless

CONFIGS = (
    ModelConfig("mlp", (2,), (256,)),
    ModelConfig("cnn", (2,), (32,)),
    ModelConfig("rnn", (1,), (128,)),
    ModelConfig("crnn", (1, 1), (16, 32)),
)
GPUS = ("p100-pcie-16gb", "v100-pcie-32gb", "quadro-rtx6000", "a100-sxm4-40gb")
TRUE_PARAMS = {
    **initial_params(),
    "eff_conv": 0.3,
    "eff_dense": 0.45,
    "eff_recurrent": 0.25,
    "step_s": 3e-3,
    "kernel_s": 8e-6,
    "idle_share": 0.15,
    "limit_exponent": 0.35,
}


@pytest.fixture(scope="session")
def profiles() -> dict[str, GraphProfile]:
    out = {}
    for config in CONFIGS:
        torch.manual_seed(0)
        graph = export_weightless(build_model(config), torch.zeros(1, *INPUT_SHAPE))
        out[config.config_id] = profile_graph(graph)
    return out


def rates(gpu: str) -> GpuRates:
    spec = find_gpu(gpu)
    assert spec is not None
    return GpuRates.from_spec(spec)


def synthetic_rows(
    profiles: dict[str, GraphProfile], gpus: tuple[str, ...] = GPUS, noise: float = 0.03
) -> pd.DataFrame:
    """Training rows of every GPU x graph x batch size x power limit, from TRUE_PARAMS with
    multiplicative noise on duration and power."""
    rng = np.random.default_rng(1)
    records = []
    for gpu in gpus:
        r = rates(gpu)
        low, high = r.limit_range_w()
        for name, profile in profiles.items():
            for batch in (4, 16, 64, 256):
                for limit in (low, (low + high) / 2, high):
                    records.append(
                        {
                            "hardware": gpu,
                            "workload": name,
                            "config_id": name,
                            "phase": "train",
                            "energy_source": "nvml-energy-counter",
                            **work_of(profile),
                            "train": 1.0,
                            "batch_size": float(batch),
                            "samples": 5000.0,
                            "epochs": 1.0,
                            "power_limit_w": float(limit),
                            "amp": 0.0,
                            "tf32": 0.0,
                            **gpu_of(r),
                        }
                    )
    frame = pd.DataFrame(records)
    out = predict(TRUE_PARAMS, query_arrays(frame))
    frame["duration_s"] = out.duration_s * np.exp(rng.normal(0, noise, len(frame)))
    frame["power_w"] = out.power_w * np.exp(rng.normal(0, noise, len(frame)))
    frame["energy_j"] = frame["duration_s"] * frame["power_w"]
    assert np.isfinite(frame["energy_j"]).all() and not math.isnan(frame["energy_j"].sum())
    return frame
