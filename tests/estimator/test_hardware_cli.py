"""`joulecast hardware`: the catalogued GPUs and the measured hardware, as JSON and as a table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from estimator.published import list_hardware, read_summary
from estimator.transfer import artifact, calibrated
from joulecast.cli import main
from joulecast.hardware import load_catalog
from joulecast.hardware.spec import FIGURES

ROOT = Path(__file__).resolve().parents[2]
VERSION = "0123456789ab"


def publish_fake(artifacts: Path, hardware: str, energy_source: str) -> None:
    """A published predictor as far as listings see it: CURRENT and the version's manifest."""
    folder = artifacts / "predictors" / hardware / VERSION
    folder.mkdir(parents=True)
    manifest = {
        "hardware": hardware,
        "version": VERSION,
        "energy_source": energy_source,
        "energy_is_estimate": energy_source.startswith("estimate-"),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder.parent / "CURRENT").write_text(VERSION + "\n")


def listing(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    assert main(["hardware", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    publish_fake(tmp_path, "h200", "nvml-energy-counter")
    publish_fake(tmp_path, "nvidia-h200", "nvml-power-integral")  # the collector's default id
    publish_fake(tmp_path, "tesla-v100-pcie-32gb", "nvml-energy-counter")
    publish_fake(tmp_path, "cpu-amd-epyc", "estimate-cpu-time")
    publish_fake(tmp_path, "xeon-gold-5120-2c", "codecarbon-intel-rapl")
    publish_fake(tmp_path, "a100", "carbontracker-nvml")  # a partial name claims no entry
    publish_fake(tmp_path, "mystery-box", "estimate-wall-socket")
    return tmp_path


def test_json_lists_every_catalogued_gpu_and_the_measured_hardware(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = {row["id"]: row for row in listing(capsys, "--artifacts", str(artifacts))}
    catalog_ids = [spec.id for spec in load_catalog()]
    assert list(rows)[: len(catalog_ids)] == catalog_ids
    assert set(rows) == set(catalog_ids) | {
        "cpu-amd-epyc",
        "xeon-gold-5120-2c",
        "a100",
        "mystery-box",
    }

    h200 = rows["h200"]
    assert (h200["kind"], h200["catalogued"], h200["measured"]) == ("gpu", True, True)
    assert {p["hardware"] for p in h200["predictors"]} == {"h200", "nvidia-h200"}
    assert h200["nvml_names"] == ["NVIDIA H200"]
    assert (h200["power_limit_w"], h200["idle_power_w"], h200["compute_capability"]) == (
        700,
        77,
        "9.0",
    )
    assert rows["v100-pcie-32gb"]["measured"] is True
    assert rows["v100-pcie-32gb"]["predictors"][0]["hardware"] == "tesla-v100-pcie-32gb"
    assert rows["tesla-t4"]["measured"] is False and rows["tesla-t4"]["predictors"] == []
    assert rows["tesla-t4"]["fp32_tflops"] == 8.1

    epyc = rows["cpu-amd-epyc"]
    # its rows are CPU-time estimates: it has a predictor of its own, but nothing metered
    assert (epyc["kind"], epyc["catalogued"], epyc["measured"]) == ("cpu", False, False)
    assert epyc["estimated"] is True and h200["estimated"] is False
    assert epyc["name"] is None and epyc["nvml_names"] == []
    assert all(epyc[name] is None for name in FIGURES)
    assert epyc["predictors"] == [
        {
            "hardware": "cpu-amd-epyc",
            "version": VERSION,
            "energy_source": "estimate-cpu-time",
            "energy_is_estimate": True,
        }
    ]
    assert rows["xeon-gold-5120-2c"]["kind"] == "cpu"
    assert (rows["a100"]["kind"], rows["a100"]["catalogued"]) == ("gpu", False)
    assert rows["mystery-box"]["kind"] == "unknown"
    # one schema for every object, catalogued or not
    assert len({tuple(row) for row in rows.values()}) == 1


def test_the_shipped_artifacts_list_the_quadro_and_the_cpus(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = {row["id"]: row for row in listing(capsys, "--artifacts", str(ROOT / "artifacts"))}
    assert rows["quadro-rtx6000"]["measured"] is True
    assert rows["quadro-rtx6000"]["predictors"][0]["energy_source"] == "carbontracker-nvml"
    for cpu, metered in (("cpu-amd-epyc", False), ("xeon-gold-5120-2c", True)):  # RAPL
        assert (rows[cpu]["kind"], rows[cpu]["measured"], rows[cpu]["catalogued"]) == (
            "cpu",
            metered,
            False,
        )
        assert rows[cpu]["estimated"] is not metered


def test_without_artifacts_every_gpu_is_unmeasured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = listing(capsys, "--artifacts", str(tmp_path / "none"))
    assert len(rows) == len(load_catalog())
    assert not any(row["measured"] or row["estimated"] for row in rows)


def test_the_table_shows_catalogued_and_measured_hardware(
    artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["hardware", "--artifacts", str(artifacts)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert out.splitlines()[0].split()[:4] == ["id", "kind", "rows", "arch"]
    assert "measured (nvidia-h200)" in lines["h200"] and "NVIDIA H200 SXM 141 GB" in lines["h200"]
    assert lines["cpu-amd-epyc"].split()[1:3] == ["cpu", "estimated"]
    assert lines["tesla-t4"].split()[1:3] == ["gpu", "no"]
    assert "(not in the catalog)" in lines["cpu-amd-epyc"]
    assert "not measurements" in out.splitlines()[-1]


def test_an_unreadable_manifest_is_left_out_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    publish_fake(tmp_path, "cpu-amd-epyc", "estimate-cpu-time")
    (tmp_path / "predictors" / "broken" / "CURRENT").parent.mkdir()
    (tmp_path / "predictors" / "broken" / "CURRENT").write_text("../../etc\n")
    assert list_hardware(tmp_path) == ["broken", "cpu-amd-epyc"]
    with caplog.at_level(logging.WARNING):
        rows = listing(capsys, "--artifacts", str(tmp_path))
    assert "broken" not in {row["id"] for row in rows}
    assert "cpu-amd-epyc" in {row["id"] for row in rows}
    assert "does not name a version" in caplog.text


def test_read_summary_reads_the_current_manifest(tmp_path: Path) -> None:
    publish_fake(tmp_path, "h200", "nvml-energy-counter")
    summary = read_summary(tmp_path, "h200")
    assert summary is not None
    assert (summary.version, summary.energy_source, summary.energy_is_estimate) == (
        VERSION,
        "nvml-energy-counter",
        False,
    )
    (tmp_path / "predictors" / "h200" / VERSION / "manifest.json").write_text("[1]")
    assert read_summary(tmp_path, "h200") is None
    assert read_summary(tmp_path, "absent") is None


def test_predictors_lists_a_folder_that_holds_only_a_calibration(tmp_path: Path, capsys) -> None:
    prior = artifact.load(ROOT / "artifacts")
    assert prior is not None
    model = calibrated.CalibratedModel(
        "my-t4", "tesla-t4", prior.params, {"train": (-0.4, 0.5)}, {"rows": 12}
    )
    calibrated.publish(model, tmp_path)
    (tmp_path / "transfer" / "gpu-training.json").write_bytes(
        artifact.path_in(ROOT / "artifacts").read_bytes()
    )
    assert main(["predictors", "--artifacts", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(e["hardware"], e["version"]) for e in listed] == [("my-t4", model.version)]
