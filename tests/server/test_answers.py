"""The server's answer cache, with a real fitted predictor.

A repeated request is answered without the predictor, with the very answer the predictor gives;
an answer of an older version is never served once a retrain (or a reload) swapped in a new one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from estimator.publish import fit_and_publish
from estimator.service import PredictorRegistry
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore
from rpc.generated import estimator_pb2 as pb
from server.core import EstimatorCore, PredictQuery

HARDWARE = "cpu-test"


def store_rows(db: Path, rows: list[tuple[Any, bytes]]) -> None:
    with MeasurementStore(db) as store:
        store.put_graphs([graph for _, graph in rows])
        store.put_rows([(row, ()) for row, _ in rows])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, make_rows) -> tuple[Path, Path]:
    """(artifacts, db): one version of ``cpu-test`` fitted on the sweep's formula rows."""
    folder = tmp_path_factory.mktemp("answers")
    db, artifacts = folder / "m.db", folder / "artifacts"
    store_rows(db, make_rows(HARDWARE))
    fit_and_publish(db, HARDWARE, artifacts)
    return artifacts, db


class CountingRegistry(PredictorRegistry):
    """The real registry, counting the predictions it computes."""

    def __init__(self, artifacts_dir: Path) -> None:
        super().__init__(artifacts_dir)
        self.calls = 0

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return super().predict(*args, **kwargs)


def requests(graphs: list[bytes]) -> list[pb.PredictEnergyRequest]:
    """Requests that differ in every field an answer depends on (and in region and price,
    which the cached prediction's footprint is recomputed for)."""
    out = []
    for graph in graphs:
        for batch, samples, epochs in ((8, 1578, 1), (32, 1578, 1), (8, 50_000, 3)):
            out.append(
                pb.PredictEnergyRequest(
                    onnx_model=graph, batch_size=batch, samples=samples, epochs=epochs
                )
            )
        base = dict(onnx_model=graph, batch_size=8, samples=1578, epochs=1)
        out.append(pb.PredictEnergyRequest(**base, hardware=HARDWARE))
        out.append(pb.PredictEnergyRequest(**base, observed_gpu_util=50.0))
        out.append(pb.PredictEnergyRequest(**base, region="FRA", price_per_kwh=0.2))
        out.append(pb.PredictEnergyRequest(**base, region="POL"))
    return out


def test_cached_answers_equal_computed_ones_and_skip_the_predictor(
    start_server, fitted, family_graphs
) -> None:
    artifacts, _ = fitted
    asked = requests([family_graphs["crnn"], family_graphs["mlp"]])
    cached_registry = CountingRegistry(artifacts)
    cached = start_server(registry=cached_registry, artifacts_dir=artifacts)
    plain_registry = CountingRegistry(artifacts)
    plain = start_server(registry=plain_registry, artifacts_dir=artifacts, answer_cache_size=0)

    first = [cached.stub.PredictEnergy(r, timeout=30) for r in asked]
    computed = cached_registry.calls
    # Region and price do not change the prediction: those requests are hits already.
    assert 0 < computed < len(asked)
    again = [cached.stub.PredictEnergy(r, timeout=30) for r in asked]
    assert cached_registry.calls == computed, "a repeated request reached the predictor"
    reference = [plain.stub.PredictEnergy(r, timeout=30) for r in asked]
    assert plain_registry.calls == len(asked)
    assert again == first == reference
    same_bytes = [
        a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
        for a, b in zip(again, reference, strict=True)
    ]
    assert all(same_bytes)
    by_region = {r.region: a for r, a in zip(asked, again, strict=True) if r.region}
    assert by_region["FRA"].train.footprint.co2_g != by_region["POL"].train.footprint.co2_g
    assert by_region["FRA"].train.footprint.HasField("cost")
    assert not by_region["POL"].train.footprint.HasField("cost")


def test_a_retrain_or_a_reload_is_never_answered_from_the_old_cache(
    fitted, family_graphs, make_rows, tmp_path
) -> None:
    artifacts, db = fitted
    registry = PredictorRegistry(artifacts)
    core = EstimatorCore(
        registry, artifacts_dir=artifacts, db_path=db, fit=fit_and_publish, profiler=None
    )
    query = PredictQuery(onnx_model=family_graphs["rnn"], batch_size=8, samples=1578, epochs=1)
    old = core.predict(query).prediction
    assert core.predict(query).prediction is old  # served from the cache

    store_rows(db, make_rows(HARDWARE, scale=3.0, tag="b"))
    retrained = core.retrain(HARDWARE)
    new = core.predict(query).prediction
    assert new.predictor_version == retrained.version != old.predictor_version
    fresh = PredictorRegistry(artifacts).predict(
        profile_graph(family_graphs["rnn"]), batch_size=8, samples=1578, epochs=1
    )
    assert new == fresh and new.train.energy_j != old.train.energy_j

    # A reload swaps in a new loaded object even for the same version: no entry survives it.
    assert core.predict(query).prediction is new
    registry.reload(HARDWARE)
    assert core.predict(query).prediction is not new
    assert core.predict(query).prediction == new
