"""Deleted rows stop counting: a version that rested on rows deleted since is not kept serving
when Retrain cannot fit a new one (every row of the hardware gone, or too few left), now and
after a restart; a version fitted on another store is left alone."""

from __future__ import annotations

import grpc
from hardening_harness import HARDWARE, TOKEN

from client import convert as client_convert
from estimator.artifacts import RETIRED, current_version, list_hardware
from estimator.service import PredictorRegistry
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

AUTH = bearer_metadata(TOKEN)
OPTIONS = client_convert.predict_options(8, 1578, 3, HARDWARE, None)


def _predict(stub, graph: bytes):
    return stub.PredictEnergy(client_convert.predict_request(graph, OPTIONS), timeout=30)


def _keys(db, keep=lambda row: False) -> list[str]:
    with MeasurementStore(db, read_only=True) as store:
        return [r.run_key for r in store.rows(status=None) if not keep(r)]


def _serve(start_server, artifacts, db):
    return start_server(
        registry=PredictorRegistry(artifacts),
        artifacts_dir=artifacts,
        db_path=db,
        profile_workers=0,
    )


def test_deleting_every_row_then_retrain_stops_serving(
    start_server, fitted_copy, family_graphs, rpc_error
) -> None:
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    served = _serve(start_server, artifacts, db)
    assert _predict(served.stub, family_graphs["mlp"]).predictor_version == old
    keys = _keys(db)
    reply = served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=keys), metadata=AUTH, timeout=30
    )
    assert reply.deleted == len(keys)
    retrained = served.stub.Retrain(
        pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=120
    )
    assert retrained.version == "" and retrained.hardware == HARDWARE
    assert retrained.selected.startswith("not served any more")
    assert f"version {old} rested on {len(keys)} row(s) deleted since" in retrained.selected
    code, details = rpc_error(
        served.stub.PredictEnergy,
        client_convert.predict_request(family_graphs["mlp"], OPTIONS),
        timeout=30,
    )
    assert code == grpc.StatusCode.NOT_FOUND and HARDWARE in details
    listed = served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10)
    assert HARDWARE not in [p.hardware for p in listed.predictors]
    assert HARDWARE not in list_hardware(artifacts)  # a restart does not bring it back
    assert (artifacts / "predictors" / HARDWARE / RETIRED).read_text().strip() == old
    assert (artifacts / "predictors" / HARDWARE / old / "manifest.json").is_file()


def test_too_few_rows_left_retires_the_version_that_rested_on_the_rest(
    start_server, fitted_copy, family_graphs, make_rows
) -> None:
    artifacts, db = fitted_copy
    old = current_version(artifacts, HARDWARE)
    served = _serve(start_server, artifacts, db)
    keep = {r.config_id for r, _ in make_rows(HARDWARE)[:2]}  # one configuration, two phases
    keys = _keys(db, keep=lambda row: row.config_id in keep)
    served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=keys), metadata=AUTH, timeout=30
    )
    retrained = served.stub.Retrain(
        pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=120
    )
    assert retrained.version == ""
    assert f"version {old} rested on {len(keys)} row(s) deleted since" in retrained.selected
    assert "too few measured configurations" in retrained.selected
    assert HARDWARE not in list_hardware(artifacts)


def test_a_refit_that_works_rests_on_the_remaining_rows_only(
    start_server, fitted_copy, family_graphs
) -> None:
    artifacts, db = fitted_copy
    served = _serve(start_server, artifacts, db)
    keys = _keys(db, keep=lambda row: row.family != "rnn")
    served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=keys), metadata=AUTH, timeout=30
    )
    retrained = served.stub.Retrain(
        pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=300
    )
    assert retrained.version and retrained.version == current_version(artifacts, HARDWARE)
    registry = PredictorRegistry(artifacts)
    dataset = registry.serving(HARDWARE).manifest["dataset"]
    assert dataset["rows"] == len(_keys(db)) and "rnn" not in dataset["families"]
    assert _predict(served.stub, family_graphs["mlp"]).predictor_version == retrained.version
    # the rows deleted before this refit are not under it: a retrain that fails now must
    # leave it serving; only a row it rested on, deleted since, counts
    assert registry.deleted_under(HARDWARE, db) == 0
    served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=_keys(db)[:1]), metadata=AUTH, timeout=30
    )
    assert registry.deleted_under(HARDWARE, db) == 1


def test_rows_deleted_from_another_store_leave_the_version_serving(
    start_server, fitted_copy, family_graphs, make_rows, rpc_error, tmp_path
) -> None:
    artifacts, _ = fitted_copy
    other = tmp_path / "other.db"
    old = current_version(artifacts, HARDWARE)
    served = _serve(start_server, artifacts, other)
    rows = make_rows(HARDWARE, tag="elsewhere")[:1]
    added = served.stub.AddMeasurements(
        (client_convert.message_from_row(r, g) for r, g in rows), metadata=AUTH, timeout=30
    )
    assert added.accepted == 1
    served.stub.DeleteMeasurements(
        pb.DeleteMeasurementsRequest(run_keys=[rows[0][0].run_key]), metadata=AUTH, timeout=30
    )
    code, _ = rpc_error(
        served.stub.Retrain, pb.RetrainRequest(hardware=HARDWARE), metadata=AUTH, timeout=60
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert _predict(served.stub, family_graphs["mlp"]).predictor_version == old
    assert current_version(artifacts, HARDWARE) == old
