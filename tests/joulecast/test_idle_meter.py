"""A meter that watched an idle GPU is caught: on real files (Getzner et al.'s CodeCarbon
``gpu_energy``, read beside a CPU at work), never on the shipped GPU measurements, and a fit
refuses such rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import a_row

from joulecast import idle_meter
from joulecast.cli import main
from joulecast.measurement import Row
from joulecast.store import MeasurementStore

REPO = Path(__file__).resolve().parents[2]
GETZNER = REPO / "tests" / "data" / "getzner2023-gpu" / "00_linear-every50th.csv"
SHIPPED_GPU_STORES = ("h200.db", "zeus-nsdi23.db")
IMPORT = [
    "--phase",
    "test",
    "--graph-template",
    "Linear(in_features={input_size},out_features={output_size})",
    "--set",
    "batch_size={batch_size}",
    "--set",
    "samples={forward_passes}*{batch_size}",
    "--set",
    "repeat={rep_no}",
    "--set",
    "config_id=getzner/Linear-{input_size}-{output_size}-b{batch_size}",
]


def _row(config: int, power_w: float, duration_s: float = 10.0, **fields) -> Row:
    """A measured GPU training row of configuration ``config`` (work doubling with it)."""
    measured = {
        "run_key": f"k{config}",
        "config_id": f"c{config}",
        "samples": 1000,
        "hardware": "gpu-x",
        "device": "cuda",
        "flops_forward": 10**6 * 2**config,
        "flops_train": 3 * 10**6 * 2**config,
        "duration_s": duration_s,
        "energy_j": power_w * duration_s,
        "energy_source": "nvml-energy-counter",
        "energy_is_estimate": False,
        "power_limit_w": 250.0,
    }
    return a_row(**{**measured, **fields})


def test_flat_low_power_while_the_work_varies_is_an_idle_board() -> None:
    rows = [_row(c, 30.0 + 0.3 * c) for c in range(6)]
    (found,) = idle_meter.findings(rows)
    assert found.hardware == "gpu-x" and found.configurations == 6
    assert "work rate varied 32x" in found.message()


def test_a_board_held_at_its_power_limit_is_flat_but_busy() -> None:
    assert idle_meter.findings([_row(c, 245.0 + c) for c in range(6)]) == []


def test_utilisation_or_the_idle_baseline_is_evidence_without_a_power_limit() -> None:
    no_limit = dict(power_limit_w=None)
    assert idle_meter.findings([_row(c, 31.0, **no_limit) for c in range(6)]) == []
    idle_util = [_row(c, 31.0, gpu_util_mean=0.0, **no_limit) for c in range(6)]
    assert "utilisation of at most 0 %" in idle_meter.findings(idle_util)[0].message()
    at_idle = [_row(c, 31.0, idle_power_w=30.5, **no_limit) for c in range(6)]
    assert "idle baseline (30.5 W)" in idle_meter.findings(at_idle)[0].message()


def test_moving_power_estimates_and_few_configurations_are_not_judged() -> None:
    assert idle_meter.findings([_row(c, 30.0 + 10 * c) for c in range(6)]) == []
    estimated = dict(energy_source="estimate-cpu-time", energy_is_estimate=True)
    assert idle_meter.findings([_row(c, 4.0, **estimated) for c in range(6)]) == []
    assert idle_meter.findings([_row(c, 30.0) for c in range(3)]) == []


@pytest.mark.parametrize("store", SHIPPED_GPU_STORES)
def test_no_shipped_gpu_measurement_reads_an_idle_board(store: str) -> None:
    with MeasurementStore(REPO / "artifacts" / "measurements" / store, read_only=True) as s:
        rows = s.rows(status="ok")
    assert any(idle_meter._judged(r) for r in rows)
    assert idle_meter.findings(rows) == []


def test_getzner_gpu_energy_is_caught_at_import_and_refused_by_fit(tmp_path, capsys) -> None:
    """Their CPU study's CodeCarbon also read the idle RTX 2080 Ti beside the CPU: imported as
    the GPU's energy, ten layers draw 30.1-31.1 W. Their RAPL column is the work's, and passes."""
    gpu_db = tmp_path / "gpu.db"
    argv = ["import", str(GETZNER), "--db", str(gpu_db), "--hardware", "rtx-2080-ti-x"]
    assert main([*argv, "--energy", "gpu_energy", *IMPORT]) == 0
    err = capsys.readouterr().err
    assert "rtx-2080-ti-x (test): the meter did not see the work" in err
    assert "12% of the board's 250 W" in err and "work rate varied 10x" in err

    assert main(["fit", "--db", str(gpu_db), "--out", str(tmp_path / "a")]) != 0
    err = capsys.readouterr().err
    assert "did not see the work" in err and "--allow-idle-meter" in err
    assert not (tmp_path / "a" / "predictors").exists()
    assert main(["fit-transfer", "--db", str(gpu_db), "--no-publish"]) != 0
    assert "did not see the work" in capsys.readouterr().err

    cpu_db = tmp_path / "cpu.db"
    argv = ["import", str(GETZNER), "--db", str(cpu_db), "--hardware", "xeon-x"]
    rapl = ["--energy", "cpu_energy", "--source", "codecarbon-intel-rapl"]
    assert main([*argv, *rapl, *IMPORT]) == 0
    assert "did not see the work" not in capsys.readouterr().err
