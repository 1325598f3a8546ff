"""Bytes that are no message of a call's request type are the caller's error: a real server
answers INVALID_ARGUMENT with the parser's reason, for unary calls and for each message of a
request stream, and goes on serving; never INTERNAL with a traceback in its log."""

from __future__ import annotations

import logging

import grpc
import pytest

from rpc.auth import bearer_metadata

TOKEN = "s3cret-test-token"  # the `token` fixture of conftest.py
AUTH = bearer_metadata(TOKEN)
SERVICE = "/joulecast.v1.EnergyEstimator/"
TRUNCATED = b"\x0a\x05ab"  # field 1 says 5 bytes follow; 2 do
NO_WIRE_TYPE = b"\x0f"  # field 1 with wire type 7, which protobuf does not have
BAD_UTF8 = b"\x0a\x02\xff\xfe"  # field 1 as a string (Retrain's hardware, a run key): not UTF-8
UNARY = ("PredictEnergy", "Retrain", "ListPredictors", "DeleteMeasurements")


STREAMS = ("AddMeasurements", "PredictEnergyStream")


@pytest.mark.parametrize(
    ("payload", "methods", "streams"),
    [
        (TRUNCATED, UNARY, STREAMS),
        (NO_WIRE_TYPE, UNARY, STREAMS),
        (BAD_UTF8, ("Retrain", "DeleteMeasurements"), ()),
    ],
    ids=["truncated", "no-wire-type", "bad-utf8"],
)
def test_malformed_requests_are_invalid_argument(
    start_server, caplog, tmp_path, payload, methods, streams
) -> None:
    served = start_server(db_path=tmp_path / "m.db")
    with grpc.insecure_channel(served.address) as channel, caplog.at_level(logging.INFO):
        for method in methods:
            call = channel.unary_unary(SERVICE + method)  # bytes in, bytes out
            with pytest.raises(grpc.RpcError) as info:
                call(payload, metadata=AUTH, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, info.value)
            assert "is not a valid" in info.value.details(), method
        for method in streams:
            call = channel.stream_unary(SERVICE + method)
            with pytest.raises(grpc.RpcError) as info:
                call(iter([payload]), metadata=AUTH, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, info.value)
            assert "is not a valid" in info.value.details(), method
        listed = channel.unary_unary(SERVICE + "ListPredictors")(b"", timeout=10)
    assert isinstance(listed, bytes)  # still serving
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
