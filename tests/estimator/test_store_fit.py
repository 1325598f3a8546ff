"""Fit on a real measurement store holding real weightless graphs of small models of each family."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from estimator_groundtruth import true_energy_per_sample
from testkit import a_row, config_fields

from collector.models import ModelConfig, build_model
from estimator.dataset import dataset_size_check, from_store
from estimator.fit_cli import register
from estimator.publish import fit_and_publish
from estimator.service import PredictorRegistry
from joulecast.errors import InvalidArgument, NotFound
from joulecast.graph import profile_graph
from joulecast.measurement import Row
from joulecast.store import MeasurementStore
from joulecast.weightless import export_weightless

REPO = Path(__file__).parents[2]
CONFIGS = [
    ModelConfig("mlp", (1,), (64,)),
    ModelConfig("mlp", (1,), (256,)),
    ModelConfig("mlp", (3,), (256,)),
    ModelConfig("cnn", (1,), (8,)),
    ModelConfig("cnn", (1,), (16,)),
    ModelConfig("cnn", (2,), (32,)),
    ModelConfig("rnn", (1,), (32,)),
    ModelConfig("rnn", (1,), (128,)),
    ModelConfig("rnn", (2,), (128,)),
    ModelConfig("crnn", (1, 1), (8, 8)),
    ModelConfig("crnn", (1, 1), (16, 16)),
    ModelConfig("crnn", (2, 1), (16, 16)),
]
POWER_W = 40.0
SOURCE = "estimate-codecarbon-cpu-load"


def _row(cfg: ModelConfig, sha: str, flops: int, phase: str, samples: int, noise: float) -> Row:
    per_sample = true_energy_per_sample(cfg.family, flops if phase == "test" else 3 * flops, phase)
    energy = per_sample * samples * noise
    return a_row(
        f"cpu-small/{cfg.config_id}/{phase}/{samples}",
        plan="test",
        **config_fields(cfg),
        phase=phase,
        samples=samples,
        hardware="cpu-small",
        flops_forward=flops,
        flops_train=3 * flops,
        energy_j=energy,
        energy_source=SOURCE,
        energy_is_estimate=True,
        duration_s=energy / POWER_W,
        graph_sha256=sha,
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "measurements.db"
    rng = np.random.default_rng(0)
    with MeasurementStore(path) as store:
        for i, cfg in enumerate(CONFIGS):
            torch.manual_seed(0)
            graph = export_weightless(build_model(cfg), torch.zeros(1, 1, 128, 64))
            sha = store.put_graph(graph)
            flops = profile_graph(graph).flops_forward
            sizes = (64, 128, 256) if i == 0 else (64,)
            for phase in ("train", "test"):
                for samples in sizes:
                    store.put_row(_row(cfg, sha, flops, phase, samples, rng.lognormal(0, 0.03)))
        store.put_row(
            Row(**{**_row(CONFIGS[0], sha, 1, "test", 8, 1.0).__dict__, "hardware": "other-hw"})
        )
    return path


def test_dataset_from_store_featurizes_graphs(store_path: Path) -> None:
    dataset = from_store(store_path, "cpu-small")
    assert dataset.energy_is_estimate and dataset.energy_source == SOURCE
    assert set(dataset.frame["family"]) == {"mlp", "cnn", "rnn", "crnn"}
    assert not dataset.has_gpu_util
    fits = dataset_size_check(dataset)
    assert {f.phase for f in fits} == {"train", "test"}
    for fit in fits:
        assert fit.r2 > 0.99 and fit.sizes == (64, 128, 256)
    with pytest.raises(InvalidArgument, match="cpu-small"):
        from_store(store_path, None)
    with pytest.raises(NotFound, match="other-hw"):
        from_store(store_path, "gpu-x")


def test_rows_of_one_name_from_two_machines_are_warned_about(
    store_path: Path, tmp_path: Path
) -> None:
    assert not any("machines" in w for w in from_store(store_path, "cpu-small").warnings)
    mixed = tmp_path / "mixed.db"
    with MeasurementStore(store_path, read_only=True) as source, MeasurementStore(mixed) as out:
        for i, row in enumerate(source.rows(hardware="cpu-small")):
            out.put_graph(source.get_graph(row.graph_sha256))  # type: ignore[arg-type]
            cpu = "AMD EPYC (cpu family 26, model 2)" if i % 4 else "Intel(R) Xeon(R) (family 6)"
            out.put_row(Row(**{**row.__dict__, "cpu_model": cpu}))
    warned = [w for w in from_store(mixed, "cpu-small").warnings if "machines" in w]
    assert len(warned) == 1
    assert (
        "measured on 2 machines" in warned[0] and "AMD EPYC (cpu family 26, model 2)" in warned[0]
    )


def test_on_few_configurations_no_tree_model_is_selected(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve configurations: the boosted models are fitted and scored, never selected (their
    held-out score on so few folds wins by chance); with the threshold lowered they compete."""
    from estimator import training
    from estimator.predictors.trees import TreeModel

    dataset = from_store(store_path, "cpu-small")
    bundle = training.fit_bundle(dataset)
    trees = {n for n, m in bundle.predictors.items() if isinstance(m, TreeModel)}
    assert trees and not trees & {*bundle.selected.values(), *bundle.fallback.values()}
    assert any("are scored, never selected" in note for note in bundle.notes)
    assert all(t in bundle.scores["loco"]["train"] for t in trees)
    monkeypatch.setattr(training, "MIN_CONFIGS_FOR_TREES", 12)
    again = training.fit_bundle(dataset)
    assert not any("never selected" in note for note in again.notes)


def test_fit_and_publish_then_serve(store_path: Path, tmp_path: Path) -> None:
    result = fit_and_publish(store_path, "cpu-small", tmp_path)
    assert set(result.as_dict()) >= {"hardware", "version", "scores", "selected"}
    assert result.dataset["size_check"]["checked"] == 2
    assert set(result.scores) == {"loco", "lofo"}
    registry = PredictorRegistry(tmp_path)
    graph = export_weightless(
        build_model(ModelConfig("cnn", (1,), (24,))), torch.zeros(1, 1, 128, 64)
    )
    pred = registry.predict(profile_graph(graph), batch_size=8, samples=1578, epochs=1)
    assert pred.energy_is_estimate and pred.energy_source == SOURCE
    assert any("ESTIMATED" in w for w in pred.warnings)
    assert pred.train.energy_j > pred.test.energy_j > 0
    assert pred.predictor_version == result.version


def test_cli_fit_and_list(store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "fit",
            "--db",
            str(store_path),
            "--hardware",
            "cpu-small",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert args.func(args) == 0
    fitted = json.loads(capsys.readouterr().out)
    assert "global-flops" in fitted["scores"]["loco"]["train"]
    args = parser.parse_args(["predictors", "--artifacts", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert fitted["version"] in out and "ESTIMATED" in out


def test_fit_writes_held_out_predictions_for_the_report(store_path: Path, tmp_path: Path) -> None:
    import pandas as pd

    from joulecast.store import MeasurementStore

    csv_path = tmp_path / "cv.csv"
    result = fit_and_publish(store_path, "cpu-small", tmp_path / "a", held_out_csv=csv_path)
    held = pd.read_csv(csv_path)
    assert set(held.columns) >= {
        "config_id",
        "family",
        "phase",
        "predictor",
        "measured_j",
        "predicted_j",
    }
    with MeasurementStore(store_path) as store:
        rows = store.rows(hardware="cpu-small")
    selected = held[held["predictor"] == result.selected["test"]]
    test = selected[selected["phase"] == "test"]
    assert len(test) == sum(r.phase == "test" for r in rows)
    assert sorted(test["measured_j"].round(6)) == sorted(
        round(r.energy_j, 6) for r in rows if r.phase == "test"
    )
    assert (held["predicted_j"] > 0).all()


def test_rows_that_name_no_meter_are_never_fitted_as_measured(store_path: Path) -> None:
    """A row without an energy source, or flagged an estimate under a meter's name (an old
    store, a hand-built row), is read as an estimate: nothing says a meter read it."""
    from estimator.dataset import from_rows

    with MeasurementStore(store_path, read_only=True) as store:
        rows = store.rows(hardware="cpu-small")
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    unnamed = [
        Row(**{**r.__dict__, "energy_source": None, "energy_is_estimate": False}) for r in rows
    ]
    dataset = from_rows(unnamed, graphs, "cpu-small")  # type: ignore[arg-type]
    assert dataset.energy_is_estimate and dataset.energy_source == "estimate-unknown"
    flagged = [
        Row(**{**r.__dict__, "energy_source": "rapl", "energy_is_estimate": True}) for r in rows
    ]
    dataset = from_rows(flagged, graphs, "cpu-small")  # type: ignore[arg-type]
    assert dataset.energy_is_estimate and dataset.energy_source == "estimate-rapl"


def test_a_few_estimated_rows_among_measured_ones_make_the_fit_an_estimate(
    store_path: Path,
) -> None:
    """Most rows RAPL, a fifth CPU-time estimates: the fit is labelled an estimate, by the
    estimate's name, and warns of the mix (one estimated row is enough: the fit learns from
    every row)."""
    from estimator.dataset import from_rows

    with MeasurementStore(store_path, read_only=True) as store:
        rows = store.rows(hardware="cpu-small")
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    mixed = [
        Row(**{**r.__dict__, "energy_source": "rapl", "energy_is_estimate": False})
        if n % 5
        else Row(**{**r.__dict__, "energy_source": "estimate-cpu-time", "energy_is_estimate": True})
        for n, r in enumerate(rows)
    ]
    assert any(r.energy_source == "rapl" for r in mixed)
    dataset = from_rows(mixed, graphs, "cpu-small")  # type: ignore[arg-type]
    assert dataset.energy_is_estimate and dataset.energy_source == "estimate-cpu-time"
    assert any("mix energy sources" in w for w in dataset.warnings)


def test_a_fitted_gpu_of_estimated_rows_answers_as_an_estimate(
    store_path: Path, tmp_path: Path
) -> None:
    """A GPU the transfer model was fitted on answers training from it and testing from its
    own predictor: when that predictor learned from estimated rows, the answer says so and
    names both sources."""
    import shutil

    gpu_db, artifacts = tmp_path / "p100.db", tmp_path / "artifacts"
    shutil.copytree(REPO / "artifacts" / "transfer", artifacts / "transfer")
    with MeasurementStore(store_path, read_only=True) as source, MeasurementStore(gpu_db) as out:
        for row in source.rows(hardware="cpu-small"):
            out.put_graph(source.get_graph(row.graph_sha256))  # type: ignore[arg-type]
            gpu = {"device": "cuda", "device_name": "Tesla P100-PCIE-16GB"}  # the P100's rows
            out.put_row(Row(**{**row.__dict__, "hardware": "p100-pcie-16gb", **gpu}))
            graph = source.get_graph(row.graph_sha256)  # one the predictor has seen
    fit_and_publish(gpu_db, "p100-pcie-16gb", artifacts)
    answer = PredictorRegistry(artifacts).predict(
        profile_graph(graph), batch_size=8, samples=64, epochs=1, hardware="p100-pcie-16gb"
    )
    assert answer.train is not None and answer.test is not None
    assert answer.energy_is_estimate
    assert SOURCE in answer.energy_source.split("+") and "zeus-nvml-epoch" in answer.energy_source


def test_rows_of_a_replayed_trace_are_warned_about(store_path: Path) -> None:
    from estimator.dataset import from_rows

    with MeasurementStore(store_path, read_only=True) as store:
        rows = store.rows(hardware="cpu-small")
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    assert not any("replayed" in w for w in from_rows(rows, graphs, "cpu-small").warnings)  # type: ignore[arg-type]
    replayed = [Row(**{**r.__dict__, "meter": "replay"}) for r in rows[:3]] + rows[3:]
    warned = [w for w in from_rows(replayed, graphs, "cpu-small").warnings if "replayed" in w]  # type: ignore[arg-type]
    assert len(warned) == 1 and warned[0].startswith("3 row(s) were metered by a replayed trace")
