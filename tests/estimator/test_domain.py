"""Out-of-domain requests: a predictor fitted on EC-NAS-Bench rows (batch 256, 3x32x32 CNNs)
warns and widens its interval for other batch sizes, inputs and families."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from collector import nasbench101 as nb
from estimator import domain
from estimator.publish import fit_and_publish
from estimator.service import WIDEN_LOG, PredictorRegistry
from joulecast.cli import main
from joulecast.graph import profile_graph
from joulecast.weightless import export_weightless

BENCH = Path(__file__).parent.parent / "data" / "ecnas" / "bench"
CELL = ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [-1, 2, 0, -2])


def test_describe_and_outside() -> None:
    frame = pd.DataFrame({"batch_size": [256, 256], "input_shape": ["3x32x32", "3x32x32"]})
    d = domain.describe(frame)
    assert d == {
        "batch_size": [256, 256],
        "input_elements": [3072, 3072],
        "input_shapes": ["3x32x32"],
    }
    inside = {"batch_size": 256, "input_shape": "3x32x32"}
    assert domain.outside(d, inside) == []
    found = domain.outside(d, {"batch_size": 64, "input_shape": "3x64x64"})
    assert found == [
        "batch size 64 is outside the measured batch sizes (256)",
        "input 3x64x64 is not a measured input shape (3x32x32)",
    ]
    # predictors published before domains were stored answer as before
    assert domain.outside({}, {"batch_size": 64, "input_shape": "3x64x64"}) == []


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PredictorRegistry:
    folder = tmp_path_factory.mktemp("quadro")
    db = folder / "m.db"
    assert main(["import", str(BENCH), "--db", str(db), "--json"]) == 0
    fit_and_publish(db, "quadro-rtx6000", folder / "artifacts")
    return PredictorRegistry(folder / "artifacts")


def _profile(model: torch.nn.Module, shape: tuple[int, ...]):
    return profile_graph(export_weightless(model.eval(), torch.zeros(1, *shape)))


def _predict(registry: PredictorRegistry, profile, batch: int):
    return registry.predict(
        profile, batch_size=batch, samples=50_000, epochs=1, hardware="quadro-rtx6000"
    )


def test_in_domain_answers_measured_train_energy_without_domain_warnings(registry) -> None:
    answer = _predict(registry, _profile(nb.build(*CELL), nb.INPUT_SHAPE), 256)
    assert answer.energy_is_estimate is False and answer.energy_source == "carbontracker-nvml"
    assert answer.train is not None and answer.test is None
    assert not any("out of the measured domain" in w for w in answer.warnings)
    assert any("no test measurements" in w for w in answer.warnings)


def _width(answer) -> float:
    """The train interval's high/low; infinite when refused as too wide (a warning says so)."""
    if answer.train is None:
        assert any(w.startswith("train: no answer") for w in answer.warnings)
        return math.inf
    return answer.train.energy_high_j / answer.train.energy_low_j


def test_other_batch_and_input_are_warned_and_widened(registry) -> None:
    model = nb.build(*CELL)
    base = _predict(registry, _profile(model, nb.INPUT_SHAPE), 256)
    batch = _predict(registry, _profile(model, nb.INPUT_SHAPE), 64)
    both = _predict(registry, _profile(model, (3, 64, 64)), 64)
    assert any("batch size 64 is outside" in w for w in batch.warnings)
    assert any("input 3x64x64 is not a measured input shape" in w for w in both.warnings)
    assert _width(base) < _width(batch) < _width(both)
    # each dimension outside the data adds its log half-width: high/low grows by exp(2·extra)
    assert _width(batch) == pytest.approx(_width(base) * math.exp(2 * WIDEN_LOG["batch_size"]))


def test_another_family_is_warned_and_widened(registry) -> None:
    mlp = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    answer = _predict(registry, _profile(mlp, nb.INPUT_SHAPE), 256)
    base = _predict(registry, _profile(nb.build(*CELL), nb.INPUT_SHAPE), 256)
    assert any("family 'mlp' is not in the train data" in w for w in answer.warnings)
    bundle = registry._get("quadro-rtx6000").bundle
    in_data = math.exp(2 * bundle.q_log["train"][bundle.selected["train"]])
    assert _width(answer) > in_data and base.train is not None
