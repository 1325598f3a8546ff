"""The README's main job: a real server on the shipped artifacts answers for the sample CRNN."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from estimator.service import PredictorRegistry
from joulecast.measurement import is_estimate

REPO = Path(__file__).parents[2]


def test_every_shipped_predictor_loads_and_says_where_its_energy_comes_from() -> None:
    registry = PredictorRegistry(REPO / "artifacts")
    described = {d.hardware: d for d in registry.describe()}
    assert "xeon-gold-5120-2c" in described
    cpu = [hw for hw in described if hw.startswith("cpu-")]
    assert cpu, f"no CPU predictor shipped: {sorted(described)}"
    assert is_estimate(described[cpu[0]].energy_source)
    assert described["xeon-gold-5120-2c"].energy_source == "codecarbon-intel-rapl"
    assert described["xeon-gold-5120-2c"].layer_sum["answers"] == ["test"]


def test_demo_starts_a_server_predicts_and_stops(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.demo", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "server stopped" in done.stdout
    start = done.stdout.index("{")
    answer, _ = json.JSONDecoder().raw_decode(done.stdout[start:])
    assert answer["family"] == "crnn"
    assert is_estimate(answer["energy_source"])
    assert any("ESTIMATED" in w for w in answer["warnings"])
    for phase in ("train", "test"):
        estimate = answer[phase]
        assert 0 < estimate["energy_low_j"] <= estimate["energy_j"] <= estimate["energy_high_j"]
    assert answer["train"]["energy_j"] > answer["test"]["energy_j"]


def test_a_shipped_energy_only_predictor_answers_with_the_power_its_hardware_drew() -> None:
    """The Quadro RTX 6000 predictor (energy-only ``boosted``) takes its power from the mean the
    card drew in its rows: dividing its energy by another model's duration gave 623 W for the
    sample CRNN, on a 260 W card."""
    from joulecast.graph import profile_graph

    registry = PredictorRegistry(REPO / "artifacts")
    profile = profile_graph((REPO / "examples" / "sample_crnn.onnx").read_bytes())
    answer = registry.predict(
        profile, batch_size=8, samples=1578, epochs=1, hardware="quadro-rtx6000"
    )
    drawn_w = registry._get("quadro-rtx6000").bundle.duration_model.power_["train"]
    train = answer.train
    assert train is not None and train.predictor == "boosted"
    assert train.power_w == pytest.approx(drawn_w) and train.power_w <= 260
    assert train.energy_j == pytest.approx(train.power_w * train.duration_s, rel=1e-9)
