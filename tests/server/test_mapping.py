"""The one error-to-status table, the token check, and the converters, without a server."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from testkit import a_row

from client import convert as client_convert
from joulecast import errors
from joulecast.graph import ExternalDataRefused, GraphTooLarge
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from server import converters
from server.auth import TokenCheck
from server.errors import status_of


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (ExternalDataRefused("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.ResourceLimit("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (GraphTooLarge("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED),
        (errors.JoulecastError("x"), grpc.StatusCode.INTERNAL),
        (KeyError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_status_of(exc: BaseException, code: grpc.StatusCode) -> None:
    assert status_of(exc) == code


def test_token_check() -> None:
    check = TokenCheck("right")
    check.require(bearer_metadata("right"))
    check.require([("Authorization", "Bearer right")])
    for metadata, needle in [
        ((), "missing"),
        ([("authorization", "right")], "Bearer"),
        (bearer_metadata("wrong"), "invalid token"),
        (bearer_metadata("righ"), "invalid token"),
    ]:
        with pytest.raises(errors.Unauthenticated, match=needle) as info:
            check.require(metadata)
        assert "right" not in str(info.value)
    with pytest.raises(errors.Unauthenticated, match="no token configured"):
        TokenCheck(None).require(bearer_metadata("anything"))
    assert "right" not in repr(check)


def test_row_round_trip() -> None:
    row = a_row(
        "k",
        plan="p",
        config_id="mlp-n1-h64",
        variant="",
        hidden_size="64",
        samples=16,
        hardware="hw",
        energy_j=0.0,
        duration_s=1.5,
        energy_source="rapl",
        energy_is_estimate=False,
        gpu_util_mean=None,
        graph_sha256="ab",
    )
    message = client_convert.message_from_row(row, b"graph")
    assert not message.HasField("gpu_util_mean") and message.HasField("energy_j")
    back = converters.incoming_from_message(
        3, pb.MeasurementRow.FromString(message.SerializeToString())
    )
    assert back.row == row and back.graph == b"graph" and back.index == 3
    assert (
        converters.incoming_from_message(0, client_convert.message_from_row(row, None)).graph
        is None
    )
    assert not message.HasField("power_limit_w") and back.row.power_limit_w is None
    limited = dataclasses.replace(row, power_limit_w=162.5)
    wire = client_convert.message_from_row(limited, None).SerializeToString()
    assert converters.incoming_from_message(0, pb.MeasurementRow.FromString(wire)).row == limited


def test_chunks_reassemble() -> None:
    options = client_convert.predict_options(4, 100, 2, "hw", None)
    data = bytes(range(256)) * 10
    query = converters.query_from_chunks(client_convert.predict_chunks(data, options, 100), 10_000)
    assert query.onnx_model == data and query.batch_size == 4 and query.hardware == "hw"
    assert query.observed_gpu_util is None
    with pytest.raises(errors.ResourceLimit):
        converters.query_from_chunks(client_convert.predict_chunks(data, options, 100), 1000)
    late = [
        pb.PredictEnergyChunk(options=pb.PredictOptions(**options)),
        pb.PredictEnergyChunk(options=pb.PredictOptions()),
    ]
    with pytest.raises(errors.InvalidArgument, match="only the first"):
        converters.query_from_chunks(late, 1000)


def test_endless_empty_chunks_stop_at_the_count_cap() -> None:
    """Empty chunks add no bytes, so only their count ends an endless stream of them."""
    options = client_convert.predict_options(4, 100, 2, "hw", None)
    read = 0

    def endless():
        # Bounded at twice the cap so that a missing cap fails the test instead of hanging it.
        nonlocal read
        read += 1
        yield pb.PredictEnergyChunk(options=pb.PredictOptions(**options))
        for _ in range(2 * converters.MAX_STREAM_CHUNKS):
            read += 1
            yield pb.PredictEnergyChunk()

    with pytest.raises(errors.ResourceLimit, match="chunks"):
        converters.query_from_chunks(endless(), 1000)
    assert read == converters.MAX_STREAM_CHUNKS + 1
