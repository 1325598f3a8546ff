"""The elementwise and channel-block experiments on tiny plans: real torch modules, the real cpu-time meter, a
real CSV that a rerun resumes, and the ratios the layer-sum predictor prices unmeasured ops by."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from collector.campaign import channels, elementwise
from collector.meters.cputime import CpuTimeMeter
from estimator.layerwise import elementwise as ratios
from estimator.layerwise.channels import padding_fit
from estimator.layerwise.features import CHANNEL_BLOCK
from estimator.layerwise.model import FALLBACK_RATIO

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "artifacts" / "measurements" / "elementwise-amd-epyc.csv"


def test_tiny_plan_prices_each_op_in_the_profilers_bytes_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "elementwise.csv"
    groups = elementwise.plan([(2, 16, 8, 8)])
    by_name = {item.name: item for item in groups[0]}
    one_tensor = 2 * 16 * 8 * 8 * 4
    assert by_name["Relu"].bytes_moved == 2 * one_tensor  # read once, written once
    assert by_name["Add"].bytes_moved == 3 * one_tensor  # two operands read
    assert by_name["GlobalAveragePool"].bytes_moved == one_tensor + 2 * 16 * 4
    assert by_name[elementwise.REFERENCE].onnx_op == "MaxPool"
    meter = CpuTimeMeter(core_power_w=4.0, origin="test")
    lines: list[str] = []
    measured = elementwise.run(out, groups, meter, rounds=2, window_s=0.02, say=lines.append)
    assert measured == 2 * len(by_name) == 22
    assert elementwise.run(out, groups, meter, rounds=2, window_s=0.02, say=lines.append) == 0
    frame = pd.read_csv(out)
    assert tuple(frame.columns) == elementwise.COLUMNS
    assert (frame["energy_source"] == "estimate-cpu-time").all()
    found = ratios.op_ratios(out)
    assert set(found) == {"Relu", "Sigmoid", "Tanh", "Add", "Mul", "BatchNormalization",
                          "AveragePool", "GlobalAveragePool", "Softmax", ratios.OTHER}  # fmt: skip
    assert all(r.ratio >= 0 and r.windows in (0, 2) for r in found.values())


def test_the_predictors_ratios_are_the_shipped_experiments() -> None:
    found = ratios.op_ratios(SHIPPED)
    assert set(found) == set(FALLBACK_RATIO)
    for op, ratio in FALLBACK_RATIO.items():
        assert ratio == pytest.approx(found[op].ratio, rel=5e-3), op
    # the pool runs a scalar loop, ReLU a vectorised kernel: far apart per byte
    assert FALLBACK_RATIO["Relu"] < 0.1


def test_a_bad_shape_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert elementwise.main(["--shapes", "8x64x56", "--out", "/nonexistent/x.csv"]) == 2
    assert "NxCxHxW" in capsys.readouterr().err


def test_channel_plan_writes_rows_the_padding_fit_reads(tmp_path: Path) -> None:
    out = tmp_path / "channels.csv"
    groups = channels.plan((15, 16, 17, 31, 32), side=6, batch=1)
    assert [item.name for item in groups[0]] == ["c15", "c16", "c17", "c31", "c32"]
    meter = CpuTimeMeter(core_power_w=4.0, origin="test")
    assert elementwise.run(out, groups, meter, rounds=1, window_s=0.02, say=lambda _: None) == 5
    fit = padding_fit(out)
    assert fit.channels == 5 and fit.windows == 5
    assert math.isfinite(fit.slope) and fit.aligned_ps_per_mac > 0


def test_the_shipped_channel_experiment_supports_16_channel_blocks() -> None:
    fits = {
        b: padding_fit(REPO / "artifacts/measurements/channels-amd-epyc.csv", b)
        for b in (8, 16, 32)
    }
    assert fits[CHANNEL_BLOCK].block == 16
    assert 0.8 < fits[16].slope < 1.3 and fits[16].slope_se < 0.15  # cost follows padded MACs
    assert fits[16].aligned_ps_per_mac < 0.9 * fits[16].unaligned_ps_per_mac


def test_a_bad_channel_range_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert channels.main(["--channels", "9-3", "--out", "/nonexistent/x.csv"]) == 2
    assert "FIRST-LAST" in capsys.readouterr().err
