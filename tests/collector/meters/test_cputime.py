"""The cpu-time meter on a real torch workload: CPU seconds x per-core power, an estimate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from collector.meters.cputime import (
    DEFAULT_CORE_POWER_W,
    SOURCE_CPU_TIME,
    CpuTimeMeter,
    core_power,
    pin_torch_threads,
    tdp_from_table,
)
from collector.models import ModelConfig, build_model
from joulecast.errors import InvalidArgument
from joulecast.measurement import is_estimate, source_problem


def test_a_torch_training_window_costs_cpu_seconds_times_core_watts() -> None:
    pin_torch_threads()
    assert torch.get_num_threads() == 1
    model = build_model(ModelConfig(family="cnn", layers=(2,), hidden=(16,)))
    optimizer = torch.optim.Adam(model.parameters())
    x = torch.randn(8, 1, 128, 64)
    meter = CpuTimeMeter(core_power_w=6.5, origin="test")
    meter.begin_window("w")
    for _ in range(3):
        optimizer.zero_grad()
        out = model(x)
        torch.nn.functional.binary_cross_entropy(out, torch.full_like(out, 0.5)).backward()
        optimizer.step()
    m = meter.end_window("w")
    cpu_s = m.cpu_s
    assert cpu_s is not None and cpu_s > 0
    assert m.energy_j == pytest.approx(cpu_s * 6.5, rel=1e-9)
    assert m.energy_source == SOURCE_CPU_TIME and m.is_estimate and meter.estimated
    assert source_problem(m.energy_source) is None and is_estimate(m.energy_source)
    assert m.duration_s > 0 and m.power_mean_w == pytest.approx(m.energy_j / m.duration_s)
    assert not m.short_window


def test_sleeping_costs_no_cpu_time() -> None:
    clock = iter([0.0, 0.0])
    walls = iter([0.0, 5.0])
    meter = CpuTimeMeter(core_power_w=4.0, cpu_clock=lambda: next(clock), clock=lambda: next(walls))
    meter.begin_window("idle")
    m = meter.end_window("idle")
    assert m.duration_s == 5.0 and m.energy_j == 0.0 and m.short_window


def test_per_core_power_from_codecarbons_table_else_the_default(tmp_path: Path) -> None:
    table = tmp_path / "cpu_power.csv"
    table.write_text("Name,TDP\nAMD EPYC 7763,280\nIntel Xeon Gold 6248,150\n")
    assert tdp_from_table("AMD EPYC 7763 64-Core Processor", table) is None  # exact names only
    assert tdp_from_table("AMD EPYC 7763", table) == 280.0
    assert tdp_from_table("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", table) == 150.0
    known = core_power("AMD EPYC 7763", table, cores=64)
    assert known.watts == pytest.approx(280 / 64) and "TDP 280" in known.origin
    unknown = core_power("AMD EPYC", table, cores=2)
    assert unknown.watts == DEFAULT_CORE_POWER_W and "default" in unknown.origin


def test_the_installed_codecarbon_table_is_read_offline() -> None:
    pytest.importorskip("codecarbon")
    assert tdp_from_table("AMD EPYC 4124P") == 65.0


def test_bad_core_power_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        CpuTimeMeter(core_power_w=0)
    meter = CpuTimeMeter(core_power_w=1.0)
    with pytest.raises(InvalidArgument):
        meter.end_window("never")
