"""A CPU's few-shot calibration: the shipped EPYC predictor carried to another CPU's rows.

The other CPU's rows are the shipped store's own measurements with their energy changed by a
known factor per kind of work (the graphs, runs and features stay real), so what the carry must
recover is known: a correction it learnt from some configurations has to hold for the others.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from estimator.artifacts import load_current
from estimator.carry import carry, carry_and_publish, choose_prior, is_few
from estimator.dataset import from_rows
from estimator.predictors.base import frame_rows
from estimator.predictors.carried import TERMS, Carried, design
from estimator.service import PredictorRegistry
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore

REPO = Path(__file__).parents[2]
STORE = REPO / "artifacts" / "measurements" / "cpu-amd-epyc.db"
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
TRUTH = {"base": -0.5, "dense": -0.3, "recurrent": 0.3}
"""The other CPU: everything at 0.6x the EPYC's cost, dense FLOPs a further 0.74x, recurrent
ones 1.35x (log factors per group of the prior's costs)."""
SUITE = (
    "mlp-n1-h1024",
    "mlp-n4-h4096",
    "cnn-n2-h128",
    "cnn-n1-h512",
    "rnn-n1-h512",
    "rnn-n4-h1024",
)
HELD = ("mlp-n6-h4096", "mlp-n1-h2048", "rnn-n6-h1024", "rnn-n2-h2048")


def _rows(configs: tuple[str, ...], hardware: str = "cpu-other") -> tuple[list, dict]:
    """The shipped rows of ``configs`` (paper plan) as the other CPU would have measured them."""
    prior = load_current(REPO / "artifacts", "cpu-amd-epyc").bundle
    with MeasurementStore(STORE, read_only=True) as store:
        rows = [
            r
            for r in store.rows(hardware="cpu-amd-epyc")
            if r.config_id in configs and r.plan == "paper"
        ]
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows}
    features = from_rows(rows, graphs, "cpu-amd-epyc").frame
    changed = []
    for row, serve in zip(rows, frame_rows(features), strict=True):
        inner = prior.predictors[prior.selected[row.phase]]
        x = dict(zip(TERMS, design(inner, serve.features, row.phase), strict=True))
        factor = math.exp(sum(v * x[k] for k, v in TRUTH.items() if k != "base") + TRUTH["base"])
        changed.append(
            dataclasses.replace(r := row, hardware=hardware, energy_j=r.energy_j * factor)
        )
    return changed, graphs


@pytest.fixture(scope="module")
def prior():
    found = choose_prior(REPO / "artifacts")
    assert found is not None
    return found


def test_the_prior_is_the_whole_network_cpu_sweep(prior) -> None:
    # not the Xeon's layer-sum predictor (single layers), not a GPU's
    assert prior.bundle.hardware == "cpu-amd-epyc"
    assert choose_prior(REPO / "artifacts", exclude="cpu-amd-epyc") is None


def test_a_correction_learnt_on_a_suite_holds_for_other_networks(prior) -> None:
    rows, graphs = _rows(SUITE)
    suite = from_rows(rows, graphs, "cpu-other")
    assert is_few(suite)
    done = carry(suite, prior)
    model = done.bundle.predictors[Carried.name]
    assert done.bundle.selected == {"train": "carried", "test": "carried"}
    held_rows, held_graphs = _rows(HELD)
    held = from_rows(held_rows, held_graphs, "cpu-other").frame
    base = prior.bundle.predictors[prior.bundle.selected["train"]]
    carried = np.array([model.predict_row(r) for r in frame_rows(held)])
    before = np.array([base.predict_row(r) for r in frame_rows(held)])
    measured = held["energy_per_sample_j"].to_numpy(float)
    # the prior is off by the other CPU's factors; the carried answer is back near them
    assert np.median(np.abs(np.log(before / measured))) > 0.4
    assert np.median(np.abs(np.log(carried / measured))) < 0.08
    correction = done.bundle.dataset["correction"]
    assert correction["base"] == pytest.approx(TRUTH["base"], abs=0.1)
    # every suite row was answered by a carry that never saw its configuration
    assert done.held_out["loco_j"].notna().all()
    loco = done.bundle.scores["loco"]["train"]["carried"]
    assert loco["median_ape_pct"] < loco["prior_median_ape_pct"]


def test_published_carry_answers_as_fitted_and_obeys_physics(prior, tmp_path) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(REPO / "artifacts" / "predictors" / "cpu-amd-epyc",
                    artifacts / "predictors" / "cpu-amd-epyc")  # fmt: skip
    rows, graphs = _rows(SUITE, hardware="cpu-other")
    db = tmp_path / "other.db"
    with MeasurementStore(db) as store:
        for graph in graphs.values():
            store.put_graph(graph)
        store.put_rows([(r, ()) for r in rows])
    done = carry_and_publish(db, None, artifacts)
    back = load_current(artifacts, "cpu-other")
    assert back.version == done.published.version
    assert back.bundle.dataset["prior"]["hardware"] == "cpu-amd-epyc"
    loaded, fitted = back.bundle.predictors["carried"], done.carry.bundle.predictors["carried"]
    frame = done.carry.bundle.held_out
    assert len(frame) > 0
    registry = PredictorRegistry(artifacts)
    profile = profile_graph(SAMPLE.read_bytes())
    for batch in (1, 8, 64):
        answer = registry.predict(
            profile, batch_size=batch, samples=1000, epochs=1, hardware="cpu-other"
        )
        assert answer.energy_is_estimate  # the rows were cpu-time estimates
        assert answer.train.energy_j >= answer.test.energy_j > 0
        assert answer.train.predictor == "carried"
        lo, hi = loaded.power_range_w_
        assert lo <= answer.train.power_w <= hi
        assert math.isclose(
            answer.train.energy_j, answer.train.power_w * answer.train.duration_s, rel_tol=1e-9
        )
    # the files hold the same model: loaded and fitted answer alike, bit for bit
    for row in frame_rows(from_rows(rows, graphs, "cpu-other").frame.head(6)):
        assert loaded.predict_row(row) == fitted.predict_row(row)


def test_a_sweep_is_not_few(prior) -> None:
    rows, graphs = _rows(SUITE + HELD + ("cnn-n1-h1024", "cnn-n2-h256", "cnn-n2-h384",
                                         "cnn-n2-h512", "cnn-n6-h384", "rnn-n1-h128"))  # fmt: skip
    assert not is_few(from_rows(rows, graphs, "cpu-other"))


def test_metered_rows_carrying_an_estimated_prior_answer_as_an_estimate(prior) -> None:
    """The carried answers are the prior's costs per operator kind scaled to the rows: rows a
    meter read (RAPL) do not make a prior of CPU-time estimates measured."""
    rows, graphs = _rows(SUITE)
    metered = [dataclasses.replace(r, energy_source="rapl", energy_is_estimate=False) for r in rows]
    suite = from_rows(metered, graphs, "cpu-other")
    assert not suite.energy_is_estimate and prior.bundle.energy_is_estimate
    bundle = carry(suite, prior).bundle
    assert bundle.energy_is_estimate and bundle.energy_source == "rapl+estimate-cpu-time"
