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
        max_streams=2,
        max_streams_per_host=2,  # every client here is 127.0.0.1: the rate floor is the test
        stream_rate_grace_s=0.5,
        stream_idle_s=30.0,
        profile_workers=0,
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


def test_one_host_cannot_hold_every_stream_slot(start_server) -> None:
    """With two slots, one host may hold one: its second stream is refused while the
    first still streams (after the 1 s any stream waits for a slot), and gets a slot again once
    the first has ended."""
    served = start_server(max_streams=2, stream_idle_s=30.0, profile_workers=0)
    stop = threading.Event()
    ended: list[grpc.StatusCode] = []

    def hold() -> None:
        try:
            served.stub.PredictEnergyStream(_slow(stop, chunk=512 * 1024), timeout=20)
        except grpc.RpcError as exc:
            ended.append(exc.code())

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        time.sleep(1.0)  # the slow stream holds this host's one slot
        chunks = [pb.PredictEnergyChunk(options=OPTIONS, data=SAMPLE)]
        began = time.monotonic()
        try:
            served.stub.PredictEnergyStream(iter(chunks), timeout=20)
            raise AssertionError("a host held both stream slots")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
            assert "this host already has 1 predict stream" in exc.details()
        assert time.monotonic() - began < 2.5  # after the 1 s wait for a slot of its own
        assert holder.is_alive() and not ended
    finally:
        stop.set()
        holder.join(30)
    assert ended  # the never-ending graph was never a valid one
    reply = served.stub.PredictEnergyStream(iter(chunks), timeout=20)
    assert reply.train.available
