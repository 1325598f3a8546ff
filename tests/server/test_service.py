"""The EnergyEstimator service through a real in-process server and a real stub."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from client import convert as client_convert
from rpc.generated import estimator_pb2 as pb

OPTIONS = {"batch_size": 8, "samples": 1578, "epochs": 1}


def request(graph: bytes, **changes: object) -> pb.PredictEnergyRequest:
    return pb.PredictEnergyRequest(**{"onnx_model": graph, **OPTIONS, **changes})


def code_of(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value.code(), info.value.details()


def test_predict_each_family(start_server, family_graphs) -> None:
    served = start_server()
    for family, graph in family_graphs.items():
        reply = served.stub.PredictEnergy(request(graph), timeout=30)
        assert reply.profile.family == family
        assert reply.profile.params > 0 and reply.profile.flops_train >= reply.profile.flops_forward
        assert set(reply.profile.flops_by_kind) == {"conv", "dense", "recurrent", "other"}
        assert reply.train.available and reply.train.energy_j > 0
        assert reply.train.energy_low_j <= reply.train.energy_j <= reply.train.energy_high_j
        assert reply.hardware == "cpu-test" and reply.predictor_version == "v1"
        assert reply.energy_source == "estimate-tdp" and reply.energy_is_estimate
        assert "fake predictor" in reply.warnings
        answer = client_convert.prediction_from_response(reply)
        if family == "transformer":  # the fake has no test predictor for it: null, not a number
            assert not reply.test.available and answer.test is None
        else:
            assert answer.test.energy_j == pytest.approx(reply.test.energy_j)


def test_streaming_equals_unary(start_server, family_graphs) -> None:
    served = start_server()
    graph = family_graphs["crnn"]
    options = client_convert.predict_options(8, 1578, 1, None, 55.0)
    chunks = list(client_convert.predict_chunks(graph, options, chunk_bytes=1000))
    assert len(chunks) > 3
    streamed = served.stub.PredictEnergyStream(iter(chunks), timeout=30)
    unary = served.stub.PredictEnergy(client_convert.predict_request(graph, options), timeout=30)
    assert streamed == unary


def test_stream_total_is_capped(start_server, family_graphs) -> None:
    served = start_server(max_graph_bytes=4096)
    graph = family_graphs["crnn"]
    assert len(graph) > 4096
    options = client_convert.predict_options(8, 1578, 1, None, None)
    code, details = code_of(
        served.stub.PredictEnergyStream,
        client_convert.predict_chunks(graph, options, chunk_bytes=1024),
        timeout=30,
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "4096" in details


def test_stream_protocol_errors(start_server, family_graphs) -> None:
    served = start_server()
    code, details = code_of(served.stub.PredictEnergyStream, iter([]), timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "empty stream" in details
    no_options = iter([pb.PredictEnergyChunk(data=family_graphs["mlp"])])
    code, details = code_of(served.stub.PredictEnergyStream, no_options, timeout=10)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "first chunk" in details


def test_message_size_bound(start_server) -> None:
    served = start_server(max_message_bytes=64 * 1024)
    code, _ = code_of(served.stub.PredictEnergy, request(b"\x00" * 100_000), timeout=10)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"onnx_model": b""}, "onnx_model is empty"),
        ({"onnx_model": b"definitely not onnx"}, "ONNX"),
        ({"batch_size": 0}, "batch_size"),
        ({"samples": -5}, "samples"),
        ({"epochs": 0}, "epochs"),
        ({"observed_gpu_util": 250.0}, "observed_gpu_util"),
    ],
)
def test_invalid_argument(start_server, family_graphs, changes, needle) -> None:
    served = start_server()
    code, details = code_of(
        served.stub.PredictEnergy, request(family_graphs["mlp"], **changes), timeout=10
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in details


def test_graph_too_large_is_resource_exhausted(start_server, family_graphs) -> None:
    served = start_server(max_graph_bytes=2048)
    code, details = code_of(served.stub.PredictEnergy, request(family_graphs["crnn"]), timeout=10)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "2048" in details


def test_unknown_hardware_lists_available(start_server, family_graphs) -> None:
    served = start_server()
    code, details = code_of(
        served.stub.PredictEnergy, request(family_graphs["mlp"], hardware="tpu-v9"), timeout=10
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "tpu-v9" in details and "cpu-test" in details


class Exploding:
    default_hardware = "x"

    def predict(self, *args, **kwargs):
        raise ZeroDivisionError("a bug")

    def describe(self):
        return []


def test_unexpected_error_is_internal_and_server_survives(
    start_server, family_graphs, caplog
) -> None:
    served = start_server(registry=Exploding())
    code, details = code_of(served.stub.PredictEnergy, request(family_graphs["mlp"]), timeout=10)
    assert code == grpc.StatusCode.INTERNAL and "a bug" not in details
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records)
    assert served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10).predictors == []


def test_list_predictors(start_server) -> None:
    served = start_server()
    reply = served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10)
    assert reply.default_hardware == "cpu-test"
    assert [(p.hardware, p.version) for p in reply.predictors] == [("cpu-test", "v1")]


def test_health_serving_then_not_serving_on_shutdown(start_server) -> None:
    served = start_server()
    health = health_pb2_grpc.HealthStub(served.channel)
    for name in ("", "joulecast.v1.EnergyEstimator"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    served.running.health.enter_graceful_shutdown()
    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_lists_service(start_server) -> None:
    served = start_server()
    stub = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert {"joulecast.v1.EnergyEstimator", "grpc.health.v1.Health"} <= names
    replies = stub.ServerReflectionInfo(
        iter(
            [
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="joulecast.v1.EnergyEstimator"
                )
            ]
        ),
        timeout=10,
    )
    (reply,) = list(replies)
    assert reply.file_descriptor_response.file_descriptor_proto
