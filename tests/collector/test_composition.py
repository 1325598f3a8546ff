"""The composition experiment on a tiny plan: real torch stacks, the real cpu-time meter, a real
CSV that a rerun resumes and the estimator reads back."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from collector.campaign import composition
from collector.campaign.stacks import StackSpec, build, layers_of
from collector.meters.cputime import CpuTimeMeter
from estimator.layerwise.composition import analyse


def test_a_stack_is_exactly_its_layers() -> None:
    spec = StackSpec("vgg", 4, 32, 2)
    net = build(spec)
    layers = layers_of(spec, net)
    assert [layer.module for layer in layers] == list(net)  # the very same modules
    x = torch.randn(spec.batch_size, 3, 32, 32)
    with torch.no_grad():
        whole = net(x)
        for layer in layers:
            assert tuple(x.shape) == layer.input_shape
            x = layer.module(x)
    assert torch.equal(whole, x)
    conv = layers[0]
    assert conv.macs == 2 * 4 * 32 * 32 * 9 * 3  # batch x out channels x positions x k² x in


def test_tiny_plan_writes_rows_that_round_trip_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "composition.csv"
    groups = composition.plan(("alexnet",), (4,), (32,), (1,))
    meter = CpuTimeMeter(core_power_w=4.0, origin="test")
    lines: list[str] = []
    measured = composition.run(out, groups, meter, rounds=2, window_s=0.02, say=lines.append)
    per_round = len(groups[0])  # the network, its 15 layers, the identity control
    assert measured == 2 * per_round and per_round == 17
    assert composition.run(out, groups, meter, rounds=2, window_s=0.02, say=lines.append) == 0
    rows = composition.read_rows(out)
    assert len(rows) == 2 * per_round and tuple(rows[0]) == composition.COLUMNS
    frame = pd.read_csv(out)
    assert (frame["energy_source"] == "estimate-cpu-time").all()
    assert (frame["passes"] >= 1).all() and (frame["energy_j"] > 0).all()
    ratio = frame["energy_per_pass_j"] * frame["passes"] / frame["energy_j"]
    assert ratio.to_numpy() == pytest.approx(1.0, rel=1e-6)
    assert set(frame["kind"]) == {"network", "layer", "control"}
    nets, costs, _ = analyse(frame)
    assert [n.name for n in nets] == ["alexnet-w4-i32-b1"] and nets[0].layers == 15
    assert math.isfinite(nets[0].measured_j / nets[0].layer_sum_j)
    assert {"Conv2d", "Linear", "MaxPool2d", "ReLU"} <= set(costs)


def test_help_runs() -> None:
    with pytest.raises(SystemExit) as done:
        composition.main(["--help"])
    assert done.value.code == 0
