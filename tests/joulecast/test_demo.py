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
    from estimator.service import estimate
    from joulecast.graph import profile_graph

    registry = PredictorRegistry(REPO / "artifacts")
    profile = profile_graph((REPO / "examples" / "sample_crnn.onnx").read_bytes())
    # Served, the GPU's training answer comes from the transfer model fitted on its rows (and
    # the Zeus ones); the hardware's own predictor still stands behind it, and is tested here.
    served = registry.predict(
        profile, batch_size=8, samples=1578, epochs=1, hardware="quadro-rtx6000"
    )
    assert served.train is not None and served.train.predictor == "gpu-transfer"
    answer = estimate(
        registry._get("quadro-rtx6000"), profile, batch_size=8, samples=1578, epochs=1
    )
    drawn_w = registry._get("quadro-rtx6000").bundle.duration_model.power_["train"]
    train = answer.train
    assert train is not None and train.predictor == "boosted"
    assert train.power_w == pytest.approx(drawn_w) and train.power_w <= 260
    assert train.energy_j == pytest.approx(train.power_w * train.duration_s, rel=1e-9)


def test_the_shipped_h200_store_holds_the_paper_sweep_metered_by_the_nvml_counter() -> None:
    """Every one of the paper's 86 configuration-phases measured on the H200 at the paper's
    workload (1578 clips, batch 8), by the board's energy counter, with its power and
    utilisation trace kept."""
    from joulecast.store import MeasurementStore

    with MeasurementStore(REPO / "artifacts" / "measurements" / "h200.db", read_only=True) as db:
        rows = [r for r in db.rows() if r.status == "ok"]
        traces = [db.trace(r.run_key) for r in rows[:5]]
    assert {r.hardware for r in rows} == {"h200"}
    assert {r.energy_source for r in rows} == {"nvml-energy-counter"}
    assert not any(r.energy_is_estimate for r in rows)
    paper = {(r.config_id, r.phase) for r in rows if r.samples == 1578 and r.batch_size == 8}
    assert len(paper) >= 86
    assert all(r.device_name == "NVIDIA H200" for r in rows)
    # A meter that saw the work: power moves with the model and stays inside the board's 700 W.
    powers = [r.energy_j / r.duration_s for r in rows]
    assert max(powers) / min(powers) > 3 and max(powers) < 700
    assert all(len(t) >= 1 and t[0].gpu_util_pct is not None for t in traces)


def test_the_shipped_h200_predictor_answers_both_phases_in_measured_joules() -> None:
    from joulecast.graph import profile_graph

    registry = PredictorRegistry(REPO / "artifacts")
    profile = profile_graph((REPO / "examples" / "sample_crnn.onnx").read_bytes())
    answer = registry.predict(profile, batch_size=8, samples=1578, epochs=1, hardware="h200")
    assert answer.energy_source == "nvml-energy-counter" and not is_estimate(answer.energy_source)
    assert not any("ESTIMATED" in w for w in answer.warnings)
    assert answer.train is not None and answer.test is not None
    assert answer.train.energy_j > answer.test.energy_j
    for phase in (answer.train, answer.test):
        assert 0 < phase.energy_low_j <= phase.energy_j <= phase.energy_high_j
        assert 60 < phase.power_w < 700  # between the H200's idle draw and its power limit
