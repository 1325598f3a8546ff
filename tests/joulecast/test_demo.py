"""The README's main job: a real server on the shipped artifacts answers for the sample CRNN."""

import json
import subprocess
import sys
from pathlib import Path

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
