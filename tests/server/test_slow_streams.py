"""A request stream must bring a minimum data rate: clients sending a 64 KiB chunk a second
are cut off once past the grace, so that a few of them cannot hold every stream slot; a normal
streamed prediction meanwhile finds a slot."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

from rpc.generated import estimator_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = (ROOT / "examples" / "sample_crnn.onnx").read_bytes()
OPTIONS = pb.PredictOptions(batch_size=8, samples=64, epochs=1)


def _slow(stop: threading.Event, chunk: int = 64 * 1024) -> Iterator[pb.PredictEnergyChunk]:
    """Options, then ``chunk`` bytes a second until ``stop`` (the graph never ends)."""
    yield pb.PredictEnergyChunk(options=OPTIONS)
    while not stop.is_set():
        yield pb.PredictEnergyChunk(data=b"\x00" * chunk)
        stop.wait(1.0)


def test_slow_streams_are_cut_and_a_normal_one_finds_a_slot(start_server) -> None:
    served = start_server(
        max_streams=2, stream_rate_grace_s=0.5, stream_idle_s=30.0, profile_workers=0
    )
    stop = threading.Event()
    outcomes: list[tuple[grpc.StatusCode, str, float]] = []

    def hold() -> None:
        began = time.monotonic()
        try:
            served.stub.PredictEnergyStream(_slow(stop), timeout=20)
            outcomes.append((grpc.StatusCode.OK, "", time.monotonic() - began))
        except grpc.RpcError as exc:
            outcomes.append((exc.code(), exc.details(), time.monotonic() - began))

    slow = [threading.Thread(target=hold) for _ in range(2)]
    try:
        for thread in slow:
            thread.start()
        time.sleep(2.5)  # each slow client sent 2-3 chunks: 128-192 KiB in 2.5 s
        chunks = [pb.PredictEnergyChunk(options=OPTIONS, data=SAMPLE)]
        reply = served.stub.PredictEnergyStream(iter(chunks), timeout=20)
        assert reply.train.available
    finally:
        stop.set()
        for thread in slow:
            thread.join(30)
    assert len(outcomes) == 2
    for code, details, seconds in outcomes:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        assert "KiB/s after its first 0.5 s" in details and seconds < 2.5, (details, seconds)


def test_a_fast_stream_of_many_chunks_is_not_cut(start_server) -> None:
    served = start_server(
        stream_rate_grace_s=0.2, stream_min_rate_bytes_s=1024 * 1024, profile_workers=0
    )
    pieces = [SAMPLE[i : i + 4096] for i in range(0, len(SAMPLE), 4096)]
    chunks = [pb.PredictEnergyChunk(options=OPTIONS, data=pieces[0])]
    chunks += [pb.PredictEnergyChunk(data=piece) for piece in pieces[1:]]
    assert served.stub.PredictEnergyStream(iter(chunks), timeout=20).train.available
