"""Round 2 of hardening: one request must not freeze the server.

A real ``joulecast serve`` subprocess; the pathological graphs of the corpus are profiled in
its worker processes, under a deadline and a memory cap, while other clients are answered.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hostile_corpus import concat_doubling, function_bomb, varint

from client import convert as client_convert
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc

OPTIONS = client_convert.predict_options(8, 1578, 1, None, None)


def _status(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` memory line in bytes (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class PeakRss:
    """Polls the resident memory of a server and of its workers while a test runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.worker_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for child in _children(self.pid):
                self.worker_peak = max(self.worker_peak, _status(child, "VmRSS"))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def server_peak(self) -> int:
        return _status(self.pid, "VmHWM")


@pytest.fixture
def served(spawn_server, fitted_copy):
    artifacts, db = fitted_copy
    server = spawn_server(artifacts, db)
    channel = grpc.insecure_channel(server.address)
    stub = pb_grpc.EnergyEstimatorStub(channel)
    # Warm up: every worker started, the sample graph cached.
    grpc.channel_ready_future(channel).result(timeout=30)
    yield server, channel, stub
    channel.close()


def _predict(stub, graph: bytes, timeout: float = 30) -> pb.PredictEnergyResponse:
    return stub.PredictEnergy(client_convert.predict_request(graph, OPTIONS), timeout=timeout)


def _wait_workers(stub, graph: bytes) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            _predict(stub, graph)
            return
        except grpc.RpcError:
            time.sleep(0.2)
    raise AssertionError("the server never answered")


def test_function_bomb_costs_one_worker_not_the_service(served, family_graphs) -> None:
    server, channel, stub = served
    _wait_workers(stub, family_graphs["mlp"])
    bomb = function_bomb(40)
    outcome: dict = {}

    def send_bomb() -> None:
        start = time.monotonic()
        try:
            _predict(stub, bomb)
            outcome["code"] = grpc.StatusCode.OK
        except grpc.RpcError as exc:
            outcome["code"] = exc.code()
        outcome["s"] = time.monotonic() - start

    with PeakRss(server.proc.pid) as rss:
        thread = threading.Thread(target=send_bomb)
        thread.start()
        time.sleep(0.3)
        latencies = []
        for family in ("cnn", "rnn", "crnn"):  # uncached graphs: they need a worker
            start = time.monotonic()
            reply = _predict(stub, family_graphs[family], timeout=5)
            latencies.append(time.monotonic() - start)
            assert reply.train.available
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        thread.join(30)
    assert outcome["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert outcome["s"] < 5.0, outcome
    assert max(latencies) < 2.0, latencies
    assert rss.server_peak < 1 << 30
    print(
        f"function bomb refused in {outcome['s']:.2f} s; concurrent predicts "
        f"{[round(x, 3) for x in latencies]} s; server peak RSS {rss.server_peak >> 20} MiB"
    )


def test_concat_doubling_keeps_the_server_small(served, family_graphs) -> None:
    server, _, stub = served
    _wait_workers(stub, family_graphs["mlp"])
    with PeakRss(server.proc.pid) as rss:
        for steps in (22, 24):
            with pytest.raises(grpc.RpcError) as info:
                _predict(stub, concat_doubling(steps))
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _predict(stub, family_graphs["crnn"]).train.available
    assert rss.server_peak < 1 << 30, rss.server_peak
    assert rss.worker_peak < 1536 << 20, rss.worker_peak
    print(
        f"concat doubling: server peak RSS {rss.server_peak >> 20} MiB, "
        f"worker peak {rss.worker_peak >> 20} MiB"
    )


def empty_nodes(total_bytes: int) -> bytes:
    """A ModelProto whose graph holds ``total_bytes / 2`` empty nodes (case 6: once parsed
    whole in the server, 5 GB for 64 MiB)."""
    nodes = b"\x0a\x00" * (total_bytes // 2)
    return b"\x08\x08" + b"\x42\x02\x10\x11" + b"\x3a" + varint(len(nodes)) + nodes


def test_a_stream_of_empty_nodes_keeps_the_server_small(served, family_graphs) -> None:
    server, _, stub = served
    _wait_workers(stub, family_graphs["mlp"])
    graph = empty_nodes(60 * 1024 * 1024)
    with PeakRss(server.proc.pid) as rss:
        with pytest.raises(grpc.RpcError) as info:
            stub.PredictEnergyStream(
                client_convert.predict_chunks(graph, OPTIONS, 1 << 20), timeout=60
            )
        assert info.value.code() in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.INVALID_ARGUMENT,
        ), info.value.details()
        assert _predict(stub, family_graphs["crnn"]).train.available
    assert rss.server_peak < 1 << 30, rss.server_peak
    print(
        f"64 MiB of empty nodes: {info.value.code().name}; server peak RSS "
        f"{rss.server_peak >> 20} MiB, worker peak {rss.worker_peak >> 20} MiB"
    )


def test_stalled_streams_do_not_lock_anyone_out(spawn_server, fitted_copy, family_graphs) -> None:
    server = spawn_server(*fitted_copy, "--stream-idle-s", "2")
    channel = grpc.insecure_channel(server.address)
    stub = pb_grpc.EnergyEstimatorStub(channel)
    _wait_workers(stub, family_graphs["mlp"])
    release = threading.Event()
    codes: list = []

    def stalled() -> None:
        def chunks():
            yield pb.PredictEnergyChunk(options=pb.PredictOptions(**OPTIONS), data=b"\x08" * 10)
            release.wait(60)

        try:
            stub.PredictEnergyStream(chunks(), timeout=60)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as exc:
            codes.append(exc.code())

    threads = [threading.Thread(target=stalled) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    try:
        start = time.monotonic()
        assert _predict(stub, family_graphs["rnn"], timeout=5).train.available
        predict_s = time.monotonic() - start
        health = health_pb2_grpc.HealthStub(channel)
        start = time.monotonic()
        health.Check(health_pb2.HealthCheckRequest(), timeout=2)
        health_s = time.monotonic() - start
        time.sleep(2.5)  # past the idle deadline of the admitted streams
    finally:
        release.set()
    for t in threads:
        t.join(60)
    channel.close()
    assert predict_s < 2.0 and health_s < 2.0
    # Streams past the cap are refused at once; the others are cut by the idle deadline.
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 16, codes
    print(f"16 stalled streams: predict {predict_s:.3f} s, health {health_s:.3f} s")
