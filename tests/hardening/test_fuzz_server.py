"""Mutated ONNX bytes against a real server: every call ends within a bound with a documented
status (or a prediction), never INTERNAL, and the server stays SERVING."""

from __future__ import annotations

import shutil
import time

import grpc
import onnx
import pytest
from hardening_harness import SERVING, TOKEN, health_status
from hostile_corpus import valid_mlp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from estimator.service import PredictorRegistry
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc
from server.app import serve
from server.settings import ServerSettings

CASES = 150
CALL_TIMEOUT_S = 15.0
DOCUMENTED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
}
SEEN: dict[str, int] = {}


@pytest.fixture(scope="module")
def fuzz_server(fitted, tmp_path_factory, family_graphs):
    base = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(fitted[0], base / "artifacts")
    settings_ = ServerSettings(
        artifacts_dir=base / "artifacts",
        port=0,
        token=TOKEN,
        grace_s=0.5,
        profile_cache_size=0,
    )
    running, port = serve(settings_, registry=PredictorRegistry(base / "artifacts"))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    seeds = [valid_mlp().SerializeToString(), family_graphs["cnn"], family_graphs["rnn"]]
    yield pb_grpc.EnergyEstimatorStub(channel), channel, seeds
    channel.close()
    running.shutdown(0).wait(5)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """Bytes: a seed graph with a few byte flips, insertions, deletions, a truncation or a splice."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x08, 0x12, 0x3A]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[pos:pos] = data[start : start + draw(st.integers(1, 256))]
    return bytes(data)


OPS = ["Conv", "Gemm", "MatMul", "LSTM", "GRU", "Reshape", "If", "Loop", "Einsum", "Pwn", ""]


@st.composite
def restructured(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed graph, parsed, with nodes' ops, inputs, attributes and declared dims changed:
    reaches the profiler past protobuf decoding."""
    model = onnx.ModelProto()
    model.ParseFromString(draw(st.sampled_from(seeds)))
    graph = model.graph
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["op", "input", "attr", "dim", "dup", "drop"]))
        node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
        if op == "op":
            node.op_type = draw(st.sampled_from(OPS))
        elif op == "input" and node.input:
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(
                st.sampled_from(["", "x", "ghost", node.output[0] if node.output else "y"])
            )
        elif op == "attr" and node.attribute:
            attr = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
            attr.i = draw(st.integers(-(2**40), 2**40))
            attr.ints[:] = draw(st.lists(st.integers(-(2**20), 2**20), max_size=6))
        elif op == "dim":
            values = [*graph.input, *graph.output, *graph.value_info]
            vi = values[draw(st.integers(0, len(values) - 1))]
            dims = vi.type.tensor_type.shape.dim
            if dims:
                dims[draw(st.integers(0, len(dims) - 1))].dim_value = draw(
                    st.sampled_from([0, 1, 7, 2**31 - 1, 2**31, 10**12, -3])
                )
        elif op == "dup":
            graph.node.append(node)
        elif op == "drop" and len(graph.node) > 1:
            graph.node.remove(node)
    return model.SerializeToString()


def test_mutated_graphs(fuzz_server) -> None:
    stub, channel, seeds = fuzz_server
    slowest = [0.0]

    @settings(
        max_examples=CASES,
        deadline=None,  # the bound is the gRPC timeout below, measured per call
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.one_of(mutated(seeds), restructured(seeds)), batch=st.sampled_from([1, 8, 64]))
    def one(data: bytes, batch: int) -> None:
        request = pb.PredictEnergyRequest(onnx_model=data, batch_size=batch, samples=100, epochs=1)
        started = time.monotonic()
        try:
            reply = stub.PredictEnergy(request, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            assert exc.code() in DOCUMENTED, (exc.code(), exc.details(), data.hex()[:400])
            assert exc.details()
            SEEN[exc.code().name] = SEEN.get(exc.code().name, 0) + 1
        else:
            assert reply.profile.node_count > 0
            SEEN["OK"] = SEEN.get("OK", 0) + 1
        slowest[0] = max(slowest[0], time.monotonic() - started)

    one()
    assert sum(SEEN.values()) >= CASES
    assert slowest[0] < CALL_TIMEOUT_S
    assert health_status(channel) == SERVING
    print(f"fuzz: {sum(SEEN.values())} calls, outcomes {SEEN}, slowest {slowest[0]:.2f} s")
