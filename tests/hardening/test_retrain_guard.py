"""A retrain cannot break serving: absurd rows are refused, and a new
version that fails the canary check is kept aside while the old one keeps serving."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc
from hardening_harness import HARDWARE, TOKEN

from client import convert as client_convert
from estimator.artifacts import current_version, load_current, publish
from estimator.canary import CANARIES, check_published, require_servable
from estimator.service import PredictorRegistry
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

AUTH = bearer_metadata(TOKEN)
OPTIONS = client_convert.predict_options(8, 1578, 3, HARDWARE, None)


def _predict(stub, graph: bytes) -> tuple[float, float, str]:
    reply = stub.PredictEnergy(client_convert.predict_request(graph, OPTIONS), timeout=30)
    return reply.train.energy_j, reply.test.energy_j, reply.predictor_version


def test_absurd_rows_are_refused_and_a_retrain_changes_no_answer(
    start_server, fitted_copy, make_rows, family_graphs
) -> None:
    artifacts, db = fitted_copy
    served = start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db
    )
    before = {f: _predict(served.stub, g) for f, g in family_graphs.items() if f != "other"}
    row, graph = make_rows(HARDWARE, tag="absurd")[0]
    poison = [
        dataclasses.replace(row, run_key=f"absurd-{n}", **change)
        for n, change in enumerate(
            (
                {"energy_j": 1e300},
                {"energy_j": 0.0},
                {"energy_j": 1e-300},
                {"energy_j": 5e-324},
                {"epochs": 10**12},
                {"energy_source": "banana"},
            )
        )
    ]
    reply = served.stub.AddMeasurements(
        (client_convert.message_from_row(r, graph) for r in poison), metadata=AUTH, timeout=30
    )
    assert reply.accepted == 0 and reply.rejected == len(poison)
    assert all(r.reason for r in reply.results)
    served.stub.Retrain(pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=300)
    after = {f: _predict(served.stub, g) for f, g in family_graphs.items() if f != "other"}
    assert after == before


def test_a_version_failing_the_canary_is_kept_aside(
    start_server, fitted_copy, family_graphs, rpc_error
) -> None:
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    assert check_published(load_current(artifacts, HARDWARE)) == []
    unscored = dataclasses.replace(load_current(artifacts, HARDWARE).bundle, scores={})

    def fit_without_scores(db_path: Path, hardware: str, artifacts_dir: Path) -> dict:
        """A real publish of a version whose CV scores are missing (as a degenerate fit)."""
        publish(unscored, artifacts_dir, check=require_servable)
        return {}

    served = start_server(
        registry=PredictorRegistry(artifacts),
        artifacts_dir=artifacts,
        db_path=db,
        fit=fit_without_scores,
    )
    before = _predict(served.stub, family_graphs["crnn"])
    code, details = rpc_error(
        served.stub.Retrain, pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=60
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "kept aside" in details and "no finite CV score" in details
    assert current_version(artifacts, HARDWARE) == old
    assert _predict(served.stub, family_graphs["crnn"]) == before


def test_canaries_cover_every_family() -> None:
    assert {p.family for p in CANARIES} == {"mlp", "cnn", "rnn", "crnn", "other"}


def test_rows_can_be_taken_back(start_server, fitted_copy, make_rows, family_graphs, rpc_error):
    """AddMeasurements of rows that move the predictor, DeleteMeasurements of them, Retrain:
    the answers are those of before, from the same version."""
    artifacts, db = fitted_copy
    served = start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db
    )
    graph = family_graphs["crnn"]
    before = _predict(served.stub, graph)
    extra = [(dataclasses.replace(r, repeat=1), g) for r, g in make_rows(HARDWARE, scale=50.0)]
    extra = [
        (dataclasses.replace(r, run_key=r.run_key.replace("/0", "/extra")), g) for r, g in extra
    ]
    reply = served.stub.AddMeasurements(
        (client_convert.message_from_row(r, g) for r, g in extra), metadata=AUTH, timeout=60
    )
    assert reply.accepted == len(extra), [r.reason for r in reply.results if not r.accepted]
    served.stub.Retrain(pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=300)
    moved = _predict(served.stub, graph)
    assert moved[2] != before[2] and moved[0] != before[0]

    keys = [r.run_key for r, _ in extra]
    request = pb.DeleteMeasurementsRequest(run_keys=keys)
    code, _ = rpc_error(served.stub.DeleteMeasurements, request, timeout=10)
    assert code == grpc.StatusCode.UNAUTHENTICATED
    reply = served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=[*keys, "never-stored"]), metadata=AUTH, timeout=10
    )
    assert reply.deleted == len(keys) and list(reply.missing) == ["never-stored"]
    served.stub.Retrain(pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=300)
    assert _predict(served.stub, graph) == before
