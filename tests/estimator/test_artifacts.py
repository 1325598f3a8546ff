"""Artifacts: save -> load -> identical predictions, tampering refused, atomic publish, registry."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from estimator_groundtruth import ground_truth_dataset, make_profile

from estimator.artifacts import (
    CURRENT,
    ArtifactError,
    current_version,
    load_current,
    predictors_root,
    publish,
)
from estimator.service import EnergyPrediction, PredictorRegistry
from estimator.training import Bundle, fit_bundle
from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return fit_bundle(ground_truth_dataset(configs_per_family=4, repeats=1, seed=1))


@pytest.fixture()
def artifacts(tmp_path: Path, bundle: Bundle) -> Path:
    publish(bundle, tmp_path)
    return tmp_path


def _profile(family: str = "cnn", flops: float = 3e8):
    return make_profile(family, flops, np.random.default_rng(0))


def test_round_trip_identical_predictions(artifacts: Path, bundle: Bundle) -> None:
    loaded = load_current(artifacts, bundle.hardware).bundle
    frame = ground_truth_dataset(configs_per_family=3, repeats=1, seed=5).frame
    assert set(loaded.predictors) == set(bundle.predictors)
    for name, model in bundle.predictors.items():
        np.testing.assert_array_equal(loaded.predictors[name].predict(frame), model.predict(frame))
    assert loaded.selected == bundle.selected and loaded.q_log == bundle.q_log


def test_manifest_lists_everything_and_no_pickle(artifacts: Path, bundle: Bundle) -> None:
    version = current_version(artifacts, bundle.hardware)
    folder = predictors_root(artifacts) / bundle.hardware / version
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in (
        "schema_version",
        "hardware",
        "energy_source",
        "energy_is_estimate",
        "features",
        "library_versions",
        "dataset",
        "scores",
        "selected",
        "phases",
        "created_at",
    ):
        assert key in manifest
    assert manifest["version"] == version
    assert {p.name for p in folder.iterdir()} == {"manifest.json", *manifest["files"]}
    for path in folder.iterdir():
        assert path.suffix == ".json"
        assert not path.read_bytes().startswith(b"\x80")  # no pickle protocol header


@pytest.mark.parametrize("victim", ["family-affine.json", "boosted.xgb.json"])
def test_tampered_file_refused(artifacts: Path, bundle: Bundle, victim: str) -> None:
    folder = (
        predictors_root(artifacts) / bundle.hardware / current_version(artifacts, bundle.hardware)
    )
    data = bytearray((folder / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (folder / victim).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        load_current(artifacts, bundle.hardware)
    assert PredictorRegistry(artifacts).hardware() == []


def test_edited_manifest_and_extra_file_refused(artifacts: Path, bundle: Bundle) -> None:
    folder = (
        predictors_root(artifacts) / bundle.hardware / current_version(artifacts, bundle.hardware)
    )
    (folder / "extra.pkl").write_bytes(b"\x80\x04")
    with pytest.raises(ArtifactError, match="do not match"):
        load_current(artifacts, bundle.hardware)
    (folder / "extra.pkl").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["selected"]["train"] = "global-flops"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="hash"):
        load_current(artifacts, bundle.hardware)
    manifest["schema_version"] = 99
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema"):
        load_current(artifacts, bundle.hardware)


def test_publish_is_atomic_and_idempotent(tmp_path: Path, bundle: Bundle) -> None:
    first = publish(bundle, tmp_path)
    again = publish(bundle, tmp_path)
    assert again.version == first.version
    hw_dir = predictors_root(tmp_path) / bundle.hardware
    assert [p.name for p in hw_dir.iterdir() if p.name.startswith(".")] == []
    # a half-written version (crash before rename) is invisible: CURRENT names a complete one
    shutil.copytree(hw_dir / first.version, hw_dir / ".tmp-crashed")
    (hw_dir / ".tmp-crashed" / "boosted.json").unlink()
    assert (hw_dir / CURRENT).read_text().strip() == first.version
    assert load_current(tmp_path, bundle.hardware).version == first.version


def test_registry_predicts_and_reloads(tmp_path: Path, bundle: Bundle) -> None:
    publish(bundle, tmp_path)
    registry = PredictorRegistry(tmp_path)
    assert registry.hardware() == [bundle.hardware] == [registry.default_hardware]
    result = registry.predict(_profile(), batch_size=8, samples=1578, epochs=2)
    assert isinstance(result, EnergyPrediction)
    assert result.train is not None and result.test is not None
    for est in (result.train, result.test):
        assert 0 < est.energy_low_j < est.energy_j < est.energy_high_j
        assert est.duration_s is not None and est.duration_s > 0
    half = registry.predict(_profile(), batch_size=8, samples=789, epochs=2)
    assert half.train.energy_j == pytest.approx(result.train.energy_j / 2)
    assert result.energy_source == "nvml-energy-counter" and not result.energy_is_estimate
    described = registry.describe()
    assert described[0].version == result.predictor_version

    other = fit_bundle(ground_truth_dataset(configs_per_family=3, repeats=1, seed=9))
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(20):
                registry.predict(_profile(), batch_size=8, samples=10, epochs=1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    new = publish(other, tmp_path)
    assert registry.reload(bundle.hardware) == new.version
    thread.join()
    assert not errors
    assert registry.predict(_profile(), batch_size=8, samples=10, epochs=1).predictor_version == (
        new.version
    )


def test_unknown_hardware_and_bad_input(artifacts: Path, bundle: Bundle) -> None:
    registry = PredictorRegistry(artifacts)
    with pytest.raises(NotFound, match=bundle.hardware):
        registry.predict(_profile(), batch_size=8, samples=10, epochs=1, hardware="tpu-v9")
    with pytest.raises(InvalidArgument):
        registry.predict(_profile(), batch_size=0, samples=10, epochs=1)
    with pytest.raises(InvalidArgument):
        registry.predict(_profile(), batch_size=8, samples=10, epochs=1, observed_gpu_util=150.0)
    with pytest.raises(FailedPrecondition):
        PredictorRegistry(artifacts / "empty").predict(
            _profile(), batch_size=8, samples=10, epochs=1
        )
    with pytest.raises(InvalidArgument):
        current_version(artifacts, "../etc")


def test_unseen_family_and_observed_util(artifacts: Path) -> None:
    registry = PredictorRegistry(artifacts)
    seen = registry.predict(_profile("mlp", 1e8), batch_size=8, samples=100, epochs=1)
    unseen_profile = make_profile("mlp", 1e8, np.random.default_rng(0))
    unseen_profile = type(unseen_profile)(**{**unseen_profile.__dict__, "family": "other"})
    unseen = registry.predict(unseen_profile, batch_size=8, samples=100, epochs=1)
    assert any("'other'" in w and "wider interval" in w for w in unseen.warnings)
    ratio_seen = seen.train.energy_high_j / seen.train.energy_low_j
    if unseen.train is None:  # the family-free fallback's interval would exceed x10: refused
        assert any("no answer" in w and "factor" in w for w in unseen.warnings)
    else:
        assert unseen.train.energy_high_j / unseen.train.energy_low_j > ratio_seen
    observed = registry.predict(
        _profile("mlp", 1e8), batch_size=8, samples=100, epochs=1, observed_gpu_util=90.0
    )
    assert observed.train.predictor == "utilisation-aware"
    assert any("observed GPU utilisation" in w for w in observed.warnings)


def test_phase_without_data_is_none(tmp_path: Path) -> None:
    dataset = ground_truth_dataset(configs_per_family=3, repeats=1, seed=2)
    frame = dataset.frame[dataset.frame["phase"] == "train"]
    from estimator.dataset import from_frame

    publish(fit_bundle(from_frame("train-only", frame)), tmp_path)
    result = PredictorRegistry(tmp_path).predict(_profile(), batch_size=8, samples=10, epochs=1)
    assert result.test is None and result.train is not None
    assert any("no test measurements" in w for w in result.warnings)
