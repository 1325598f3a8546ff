"""``joulecast.Estimator`` in this process: what it takes, what it returns, how it refuses.

Real torch modules, the real sample ONNX file and the shipped predictors; no server.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import onnx
import pandas as pd
import pytest
import torch
from testkit import run_python
from torch import nn

import joulecast
from joulecast.errors import ExportError, InvalidArgument

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


@pytest.fixture(scope="module")
def estimator() -> joulecast.Estimator:
    return joulecast.Estimator()


class Spectral(nn.Module):
    """A Linear, then an FFT: torch's ONNX exporter has no form for ``aten::fft_rfft``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft(self.linear(x)).abs()


def test_an_onnx_graph_as_a_path_bytes_or_a_proto_gets_one_answer(estimator) -> None:
    from_path = estimator.predict(SAMPLE, region="FRA", price_per_kwh=0.2)
    assert estimator.predict(str(SAMPLE), region="FRA", price_per_kwh=0.2) == from_path
    assert estimator.predict(SAMPLE.read_bytes(), region="FRA", price_per_kwh=0.2) == from_path
    assert estimator.predict(onnx.load(SAMPLE), region="FRA", price_per_kwh=0.2) == from_path
    assert from_path.family == "crnn"
    train = from_path.train
    assert train.interval_j == (train.energy_low_j, train.energy_high_j)
    assert train.energy_low_j < train.energy_j < train.energy_high_j
    assert train.energy_j == pytest.approx(train.power_w * train.duration_s)
    assert from_path.co2_g == pytest.approx(train.co2_g + from_path.test.co2_g)
    assert from_path.cost == pytest.approx(0.2 * (train.energy_kwh + from_path.test.energy_kwh))
    assert from_path.grid.region == "FRA"
    assert any("ESTIMATED" in w for w in from_path.warnings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        from_path.hardware = "elsewhere"  # type: ignore[misc]


def test_to_dict_is_the_clis_json(estimator, tmp_path: Path) -> None:
    """The same keys and values as `joulecast predict --local --json` (less uploaded_bytes)."""
    done = run_python(
        "-m", "joulecast.cli", "predict", str(SAMPLE), "--local", "--json",
        "--batch-size", "16", "--samples", "5000", "--epochs", "3", "--region", "DEU",
    )  # fmt: skip
    printed = json.loads(done.stdout)
    assert printed.pop("uploaded_bytes") > 0
    answer = estimator.predict(SAMPLE, batch_size=16, samples=5000, epochs=3, region="DEU")
    assert answer.to_dict() == printed
    without = estimator.predict(SAMPLE).to_dict()
    assert "grid" not in without and "price_per_kwh" not in without
    assert "co2_g" not in without["train"] and "energy_kwh" not in without["train"]


def test_a_module_is_exported_with_a_dynamic_batch(estimator) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    one = estimator.predict(model, torch.zeros(1, 128), batch_size=8, samples=1000)
    four = estimator.predict(model, torch.zeros(4, 128), batch_size=8, samples=1000)
    assert one == four  # the traced batch is not the predicted one
    assert one.family == "mlp"
    assert one.params == 128 * 64 + 64 + 64 * 10 + 10
    assert model[0].weight.requires_grad and model.training  # the module is left as it was


def test_export_failures_are_one_project_error_naming_the_operator(estimator) -> None:
    with pytest.raises(ExportError, match=r"Spectral.*aten::fft_rfft"):
        estimator.predict(Spectral(), torch.zeros(1, 16))
    with pytest.raises(ExportError, match=r"shape \(1, 5\)"):
        estimator.predict(nn.Linear(16, 2), torch.zeros(1, 5))
    assert issubclass(ExportError, InvalidArgument)


@pytest.mark.parametrize(
    ("model", "example", "says"),
    [
        (nn.Linear(4, 2), None, "needs example_input"),
        (SAMPLE, torch.zeros(1, 4), "only for a torch.nn.Module"),
        (nn.Linear(4, 2), [[0.0] * 4], "must be a torch.Tensor"),
        (42, None, "not int"),
        (b"", None, "empty"),
        (SAMPLE.parent / "missing.onnx", None, "no such file"),
    ],
)
def test_what_cannot_be_a_model_is_refused(estimator, model, example, says) -> None:
    with pytest.raises(InvalidArgument, match=says):
        estimator.predict(model, example)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"samples": 2.5},
        {"epochs": True},
        {"hardware": 3},
        {"price_per_kwh": float("nan")},
        {"power_limit_w": float("inf")},
        {"power_limit_w": 250.0},  # the default hardware is a CPU: no power limit to set
    ],
)
def test_bad_options_are_refused(estimator, options) -> None:
    with pytest.raises(InvalidArgument):
        estimator.predict(SAMPLE, **options)


def test_artifacts_and_server_together_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="not both"):
        joulecast.Estimator(ROOT / "artifacts", server="localhost:50051")
    with pytest.raises(InvalidArgument, match="does not exist"):
        joulecast.Estimator(ROOT / "no-artifacts").predict(SAMPLE)


def test_a_table_has_one_row_per_batch_size(estimator) -> None:
    table = estimator.predict_table(SAMPLE, batch_sizes=[8, 64, 256], region="FRA")
    assert isinstance(table, pd.DataFrame)
    assert list(table["batch_size"]) == [8, 64, 256]
    assert {"train_energy_j", "test_energy_high_j", "train_co2_g", "warnings", "tier"} <= set(table)
    single = estimator.predict(SAMPLE)
    assert set(table["energy_is_estimate"]) == {single.energy_is_estimate}
    assert set(table["energy_source"]) == {single.energy_source}
    assert "train_cost" not in table
    for row in table.itertuples():
        single = estimator.predict(SAMPLE, batch_size=row.batch_size, region="FRA")
        assert row.train_energy_j == single.train.energy_j
        assert row.test_co2_g == single.test.co2_g
    with pytest.raises(InvalidArgument):
        estimator.predict_table(SAMPLE, batch_sizes=[])
