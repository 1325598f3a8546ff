"""AddMeasurements and Retrain: token, per-row verdicts, commit before reply, new versions."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import grpc

from client import convert as client_convert
from estimator.service import PredictorRegistry
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

TOKEN = "s3cret-test-token"  # the `token` fixture of conftest.py
AUTH = bearer_metadata(TOKEN)


def messages(rows):
    return [client_convert.message_from_row(row, graph) for row, graph in rows]


def test_state_changing_calls_need_the_token(
    start_server, make_rows, rpc_error, tmp_path, token
) -> None:
    assert token == TOKEN
    served = start_server(db_path=tmp_path / "m.db")
    rows = messages(make_rows("hw")[:2])
    for metadata, needle in [
        ((), "missing"),
        (bearer_metadata("wrong"), "invalid token"),
        ((("authorization", TOKEN),), "Bearer"),
    ]:
        code, details = rpc_error(
            served.stub.AddMeasurements, iter(rows), metadata=metadata, timeout=10
        )
        assert (
            code == grpc.StatusCode.UNAUTHENTICATED and needle in details and TOKEN not in details
        )
        code, _ = rpc_error(
            served.stub.Retrain, pb.RetrainRequest(hardware="hw"), metadata=metadata, timeout=10
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED
    with MeasurementStore(tmp_path / "m.db") as store:
        assert store.count() == 0
    tokenless = start_server(db_path=tmp_path / "m.db", token=None)
    code, details = rpc_error(tokenless.stub.AddMeasurements, iter(rows), metadata=AUTH, timeout=10)
    assert code == grpc.StatusCode.UNAUTHENTICATED and "no token configured" in details


def test_without_store_is_failed_precondition(start_server, make_rows, rpc_error) -> None:
    served = start_server()
    rows = messages(make_rows("hw")[:1])
    code, details = rpc_error(served.stub.AddMeasurements, iter(rows), metadata=AUTH, timeout=10)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "--db" in details


def test_retrain_before_any_row_is_failed_precondition(start_server, rpc_error, tmp_path) -> None:
    served = start_server(db_path=tmp_path / "not-yet.db")
    code, details = rpc_error(
        served.stub.Retrain, pb.RetrainRequest(hardware="hw"), metadata=AUTH, timeout=30
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION, details
    assert "no measurements stored yet" in details and "AddMeasurements" in details
    assert not (tmp_path / "not-yet.db").exists()


def test_rows_get_verdicts_and_only_good_ones_are_stored(start_server, make_rows, tmp_path) -> None:
    db = tmp_path / "m.db"
    served = start_server(db_path=db)
    (good, graph), (other, _), *_ = make_rows("hw")
    bad = [
        (dataclasses.replace(good, run_key="bad-phase", phase="warmup"), graph),
        (dataclasses.replace(good, run_key="bad-sha", graph_sha256="0" * 64), graph),
        (dataclasses.replace(good, run_key="bad-graph", graph_sha256=None), b"not an onnx graph"),
        (dataclasses.replace(good, run_key="no-energy", energy_j=None), graph),
        (
            dataclasses.replace(
                good, run_key="liar", energy_source="estimate-tdp", energy_is_estimate=False
            ),
            graph,
        ),
        (dataclasses.replace(good, run_key="unknown-ref", graph_sha256="f" * 64), None),
        (dataclasses.replace(good, run_key="nan", duration_s=float("nan")), graph),
    ]
    sent = [(good, graph), *bad, (good, graph), (other, None)]  # duplicate key; graph by hash
    reply = served.stub.AddMeasurements(iter(messages(sent)), metadata=AUTH, timeout=30)
    verdicts = {(r.index, r.run_key): (r.accepted, r.reason) for r in reply.results}
    assert reply.accepted == 2 and reply.rejected == len(sent) - 2
    assert verdicts[(0, good.run_key)] == (True, "")
    assert verdicts[(len(sent) - 1, other.run_key)] == (True, "")
    reasons = [r.reason for r in reply.results if not r.accepted]
    for needle in (
        "phase",
        "does not match",
        "ONNX",
        "energy_j",
        "contradicts",
        "neither sent",
        "finite",
        "twice",
    ):
        assert any(needle in reason for reason in reasons), (needle, reasons)
    with MeasurementStore(db) as store:  # committed before the reply said accepted
        assert {r.run_key for r in store.rows()} == {good.run_key, other.run_key}
        assert store.get_graph(good.graph_sha256) == graph
    again = served.stub.AddMeasurements(iter(messages([(good, graph)])), metadata=AUTH, timeout=30)
    assert again.rejected == 1 and "already stored" in again.results[0].reason


def test_add_retrain_predict_new_version(
    start_server, make_rows, family_graphs, rpc_error, tmp_path
) -> None:
    artifacts, db = tmp_path / "artifacts", tmp_path / "m.db"
    served = start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db
    )
    request = pb.PredictEnergyRequest(
        onnx_model=family_graphs["crnn"], batch_size=8, samples=1578, epochs=1
    )
    code, details = rpc_error(served.stub.PredictEnergy, request, timeout=10)
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no predictor" in details

    reply = served.stub.AddMeasurements(
        iter(messages(make_rows("cpu-test"))), metadata=AUTH, timeout=60
    )
    assert reply.rejected == 0 and reply.accepted == 24
    first = served.stub.Retrain(pb.RetrainRequest(hardware="cpu-test"), metadata=AUTH, timeout=300)
    assert first.hardware == "cpu-test" and first.version and "train=" in first.selected
    assert client_convert.retrain_from_response(first).scores
    answer = served.stub.PredictEnergy(request, timeout=30)
    assert answer.predictor_version == first.version and answer.hardware == "cpu-test"
    assert answer.train.available and answer.train.energy_j > 0 and answer.energy_source == "rapl"
    assert not answer.energy_is_estimate

    more = served.stub.AddMeasurements(
        iter(messages(make_rows("cpu-test", scale=3.0, tag="b"))), metadata=AUTH, timeout=60
    )
    assert more.accepted == 24
    during: list[str] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def keep_predicting() -> None:
        while not done.is_set():
            try:
                during.append(served.stub.PredictEnergy(request, timeout=30).predictor_version)
            except grpc.RpcError as exc:  # pragma: no cover - the assertion below reports it
                failures.append(exc)

    worker = threading.Thread(target=keep_predicting)
    worker.start()
    try:
        second = served.stub.Retrain(
            pb.RetrainRequest(hardware="cpu-test"), metadata=AUTH, timeout=300
        )
    finally:
        done.set()
        worker.join()
    assert not failures and during and set(during) <= {first.version, second.version}
    assert second.version != first.version
    assert served.stub.PredictEnergy(request, timeout=30).predictor_version == second.version
    listed = served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10)
    assert [(p.hardware, p.version) for p in listed.predictors] == [("cpu-test", second.version)]
    assert listed.default_hardware == "cpu-test"
    assert Path(artifacts).is_dir()


def test_implausible_or_unknown_rows_are_refused_and_nothing_of_them_is_stored(
    start_server, make_rows, tmp_path
) -> None:
    """The one row check (joulecast.measurement.check_row) guards AddMeasurements: an unknown
    energy source, a non-finite, zero, negative or physically absurd energy, a poison epoch
    count, or a mislabelled estimate is refused with the field named, and never stored."""
    db = tmp_path / "m.db"
    served = start_server(db_path=db)
    (good, graph), *_ = make_rows("hw")
    cases = {
        "banana": ({"energy_source": "banana"}, "energy_source"),
        "nan-energy": ({"energy_j": float("nan")}, "energy_j"),
        "negative-energy": ({"energy_j": -5.0}, "energy_j"),
        "zero-energy": ({"energy_j": 0.0}, "energy_j"),
        "huge-energy": ({"energy_j": 1e300}, "energy_j / duration_s"),
        "tiny-energy": ({"energy_j": 1e-300}, "energy_j / duration_s"),
        "poison-epochs": ({"epochs": 10**12}, "epochs"),
        "estimate-as-measured": (
            {"energy_source": "estimate-codecarbon-cpu-load", "energy_is_estimate": False},
            "energy_is_estimate",
        ),
        "cpu-load-as-measured": ({"energy_source": "codecarbon-cpu-load"}, "not a measurement"),
    }
    sent = [
        (dataclasses.replace(good, run_key=key, **change), graph)
        for key, (change, _) in cases.items()
    ]
    reply = served.stub.AddMeasurements(iter(messages(sent)), metadata=AUTH, timeout=30)
    assert reply.accepted == 0 and reply.rejected == len(cases)
    for result in reply.results:
        needle = cases[result.run_key][1]
        assert not result.accepted and needle in result.reason, (result.run_key, result.reason)
    with MeasurementStore(db) as store:
        assert store.count() == 0
