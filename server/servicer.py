"""The gRPC adapter of :class:`~server.core.EstimatorCore`: decode, call, encode.

Each method is wrapped by :func:`~server.errors.grpc_errors`, which picks the status code of
any error; state-changing methods check the token before reading their stream.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import grpc

from joulecast.errors import ResourceLimit
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc
from server import converters
from server.auth import TokenCheck
from server.cancel import CallCancel
from server.core import EstimatorCore
from server.errors import grpc_errors

T = TypeVar("T")


CANCEL_GRACE_S = 0.02
"""How long the end of a measurement stream waits for a late cancellation, in seconds."""


class StreamCancelled(grpc.RpcError):
    """The client cancelled a request stream (``server.errors`` answers CANCELLED)."""


def _whole_stream(requests: Iterator[T], context: grpc.ServicerContext) -> Iterator[T]:
    """``requests``, then a check that the stream really ended.

    A client that cancels half-way (its request generator raised, say) can look to the
    server's iterator like a finished stream: gRPC reports the cancellation a moment later. The
    rows sent before would then be committed although the client saw the call fail. So the end
    of a stream waits :data:`CANCEL_GRACE_S` for a cancellation before the rows are committed.
    """
    ended = threading.Event()
    if not context.add_callback(ended.set):
        raise StreamCancelled()
    yield from requests
    if ended.wait(CANCEL_GRACE_S) or not context.is_active():
        raise StreamCancelled()


STREAM_SLOT_WAIT_S = 1.0
"""Longest a stream waits for a slot before RESOURCE_EXHAUSTED, in seconds."""


RATE_CHECK_S = 0.25
"""How often a stream's reader looks at the rate its client sends at, in seconds."""


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string, without its port: ``ipv4:10.0.0.5:5123`` ->
    ``ipv4:10.0.0.5``, ``ipv6:[::1]:5123`` -> ``ipv6:[::1]``; anything else (a Unix socket)
    as it is. Every connection of one machine counts as that machine."""
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6") and ":" in address:
        return f"{kind}:{address.rsplit(':', 1)[0]}"
    return peer


class _Pump:
    """Reads a request stream into a small queue on its own thread, and times the client: the
    seconds spent waiting for its messages (a full queue, when the server is the slow one, does
    not count) and the bytes they held."""

    def __init__(self, requests: Iterator[T], box: queue.Queue, stop: threading.Event) -> None:
        self._requests = requests
        self._box = box
        self._stop = stop
        self.received_bytes = 0
        self.waited_s = 0.0
        self.waiting_since: float | None = None

    def client_wait_s(self) -> float:
        since = self.waiting_since
        return self.waited_s + (time.monotonic() - since if since is not None else 0.0)

    def _put(self, item: tuple[str, object]) -> bool:
        while not self._stop.is_set():
            try:
                self._box.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            while True:
                self.waiting_since = time.monotonic()
                try:
                    message = next(self._requests)
                except StopIteration:
                    break
                finally:
                    self.waited_s += time.monotonic() - self.waiting_since
                    self.waiting_since = None
                size = getattr(message, "ByteSize", None)
                self.received_bytes += size() if size is not None else 0
                if not self._put(("message", message)):
                    return
            self._put(("end", None))
        except Exception as exc:  # the stream failed: handed to the reading thread
            self._put(("error", exc))


class CallGate:
    """Bounds on the calls in progress, so that no client can take every thread.

    At most ``max_calls`` EnergyEstimator calls and ``max_streams`` streaming calls at once
    (more are answered RESOURCE_EXHAUSTED at once, holding no thread); a request stream is
    read with a deadline per message (``idle_s``), for the whole stream (``total_s``), and at a
    minimum rate: after ``rate_grace_s`` seconds of waiting for the client, each further second
    it makes the server wait must bring ``min_rate_bytes_s`` bytes (a client sending 64 KiB a
    second held a slot for 81 s, and four of them every slot). The server has more threads than
    ``max_calls``: health checks always find one. One host holds at most
    ``max_streams_per_host`` streams of a kind (by default one less than ``max_streams``), so
    that a single machine cannot take every slot, however slowly it sends, and at most
    ``max_calls_per_host`` calls of any kind (by default three quarters of ``max_calls``), so
    that one machine asking many slow predictions at once leaves slots to the others.
    """

    def __init__(
        self,
        max_calls: int,
        max_streams: int,
        idle_s: float,
        total_s: float,
        min_rate_bytes_s: float = 256 * 1024,
        rate_grace_s: float = 5.0,
        max_streams_per_host: int | None = None,
        max_calls_per_host: int | None = None,
    ) -> None:
        self._calls = threading.BoundedSemaphore(max_calls)
        self._streams = {
            name: threading.BoundedSemaphore(max_streams) for name in ("predict", "write")
        }
        self._by_host: dict[tuple[str, str], int] = {}
        self._by_host_changed = threading.Condition()
        self.max_calls = max_calls
        self.max_streams = max_streams
        self.max_streams_per_host = (
            max(1, max_streams - 1) if max_streams_per_host is None else max_streams_per_host
        )
        self.max_calls_per_host = (
            max(1, 3 * max_calls // 4) if max_calls_per_host is None else max_calls_per_host
        )
        self.idle_s = idle_s
        self.total_s = total_s
        self.min_rate_bytes_s = min_rate_bytes_s
        self.rate_grace_s = rate_grace_s

    @contextmanager
    def call(self, host: str = "") -> Iterator[None]:
        """A call slot for a client on ``host`` (:func:`peer_host`; "" counts no host), or
        ResourceLimit at once: a unary call waits for nothing, holding no thread."""
        with self._host_share("call", host, self.max_calls_per_host, wait_s=0.0):
            if not self._calls.acquire(blocking=False):
                raise ResourceLimit(f"server busy: {self.max_calls} calls in progress; try again")
            try:
                yield
            finally:
                self._calls.release()

    @contextmanager
    def stream(self, kind: str, host: str = "") -> Iterator[None]:
        """A slot for a ``kind`` stream (``predict`` or ``write``: token holders' writes are
        not starved by anonymous predictions) of a client on ``host`` (:func:`peer_host`);
        waits :data:`STREAM_SLOT_WAIT_S` at most, so that a slot freed by a stream that just
        ended is found."""
        with self._host_share(kind, host, self.max_streams_per_host, STREAM_SLOT_WAIT_S):
            slots = self._streams[kind]
            if not slots.acquire(timeout=STREAM_SLOT_WAIT_S):
                raise ResourceLimit(
                    f"server busy: {self.max_streams} {kind} streams in progress; try again"
                )
            try:
                with self.call(host):
                    yield
            finally:
                slots.release()

    @contextmanager
    def _host_share(self, kind: str, host: str, limit: int, wait_s: float) -> Iterator[None]:
        """One of ``host``'s ``limit`` slots of ``kind``, waiting ``wait_s`` at most (a client
        that abandons a stream and opens the next finds the old one still ending). A call with
        no host ("") is not counted."""
        if not host:
            yield
            return
        key = (kind, host)
        with self._by_host_changed:
            if not self._by_host_changed.wait_for(
                lambda: self._by_host.get(key, 0) < limit, timeout=wait_s
            ):
                what = "call(s)" if kind == "call" else f"{kind} stream(s)"
                raise ResourceLimit(
                    f"server busy: this host already has {self._by_host[key]} {what} in "
                    "progress, the most one host may hold; try again when one ends"
                )
            self._by_host[key] = self._by_host.get(key, 0) + 1
        try:
            yield
        finally:
            with self._by_host_changed:
                left = self._by_host[key] - 1
                if left:
                    self._by_host[key] = left
                else:
                    del self._by_host[key]
                self._by_host_changed.notify_all()

    def read(self, requests: Iterator[T]) -> Iterator[T]:
        """``requests`` read by a helper thread, so that a silent client is cut off after
        ``idle_s`` without a message (or ``total_s`` in all), and a slow one once it falls
        below the minimum rate, with RESOURCE_EXHAUSTED."""
        box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=4)
        stop = threading.Event()
        pump = _Pump(requests, box, stop)
        threading.Thread(target=pump.run, name="joulecast-stream-read", daemon=True).start()
        end = time.monotonic() + self.total_s
        try:
            while True:
                now = time.monotonic()
                if now >= end:
                    raise ResourceLimit(
                        f"request stream took longer than {self.total_s:g} s; cut off"
                    )
                since = pump.waiting_since
                if since is not None and now - since >= self.idle_s:
                    raise ResourceLimit(
                        f"no message for {self.idle_s:g} s on the request stream; cut off"
                    )
                self._check_rate(pump)
                try:
                    kind, value = box.get(timeout=min(RATE_CHECK_S, end - now))
                except queue.Empty:
                    continue
                if kind == "end":
                    return
                if kind == "error":
                    raise value  # type: ignore[misc]
                yield value  # type: ignore[misc]
        finally:
            stop.set()

    def _check_rate(self, pump: _Pump) -> None:
        waited = pump.client_wait_s()
        allowed = self.rate_grace_s + pump.received_bytes / self.min_rate_bytes_s
        if waited > allowed:
            raise ResourceLimit(
                f"the client sent {pump.received_bytes:,} bytes in {waited:.1f} s; a request "
                f"stream must bring {self.min_rate_bytes_s / 1024:g} KiB/s after its first "
                f"{self.rate_grace_s:g} s; cut off"
            )


class EnergyEstimatorServicer(pb_grpc.EnergyEstimatorServicer):
    def __init__(
        self,
        core: EstimatorCore,
        auth: TokenCheck,
        max_graph_bytes: int,
        gate: CallGate | None = None,
    ) -> None:
        self._core = core
        self._auth = auth
        self._max_graph_bytes = max_graph_bytes
        self._gate = gate or CallGate(max_calls=32, max_streams=4, idle_s=10.0, total_s=300.0)

    @grpc_errors
    def PredictEnergy(
        self, request: pb.PredictEnergyRequest, context: grpc.ServicerContext
    ) -> pb.PredictEnergyResponse:
        with self._gate.call(peer_host(context.peer())):
            query = converters.query_from_request(request)
            result = self._core.predict(query, CallCancel.of(context))
            return converters.response_from_result(result)

    @grpc_errors
    def PredictEnergyStream(
        self, request_iterator: Iterator[pb.PredictEnergyChunk], context: grpc.ServicerContext
    ) -> pb.PredictEnergyResponse:
        with self._gate.stream("predict", peer_host(context.peer())):
            chunks = self._gate.read(request_iterator)
            query = converters.query_from_chunks(chunks, self._max_graph_bytes)
            result = self._core.predict(query, CallCancel.of(context))
            return converters.response_from_result(result)

    @grpc_errors
    def AddMeasurements(
        self, request_iterator: Iterator[pb.MeasurementRow], context: grpc.ServicerContext
    ) -> pb.AddMeasurementsResponse:
        self._auth.require(context.invocation_metadata())
        with self._gate.stream("write", peer_host(context.peer())):
            messages = _whole_stream(self._gate.read(request_iterator), context)
            verdicts = self._core.add_measurements(
                converters.incoming_from_messages(messages), CallCancel.of(context)
            )
            return converters.response_from_verdicts(verdicts)

    @grpc_errors
    def Retrain(
        self, request: pb.RetrainRequest, context: grpc.ServicerContext
    ) -> pb.RetrainResponse:
        self._auth.require(context.invocation_metadata())
        with self._gate.call(peer_host(context.peer())):
            result = self._core.retrain(
                request.hardware, CallCancel.of(context), allow_idle_meter=request.allow_idle_meter
            )
            return converters.response_from_retrain(result)

    @grpc_errors
    def DeleteMeasurements(
        self, request: pb.DeleteMeasurementsRequest, context: grpc.ServicerContext
    ) -> pb.DeleteMeasurementsResponse:
        self._auth.require(context.invocation_metadata())
        with self._gate.call(peer_host(context.peer())):
            deleted, missing = self._core.delete_measurements(list(request.run_keys))
            return converters.response_from_deleted(deleted, missing)

    @grpc_errors
    def ListPredictors(
        self, request: pb.ListPredictorsRequest, context: grpc.ServicerContext
    ) -> pb.ListPredictorsResponse:
        with self._gate.call(peer_host(context.peer())):
            described, default = self._core.describe()
            return converters.response_from_predictors(described, default)
