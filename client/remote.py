"""A small client of the EnergyEstimator service (used by the CLI and the benchmark).

It speaks domain objects and the records of :mod:`client.results`; gRPC errors come back as :class:`RemoteError`
subclasses of the project's errors, carrying the server's message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc

from client import convert
from client.predict_call import MiB, PredictArgs, PredictCaller
from client.results import (
    DeleteReply,
    MeasurementsReply,
    PredictionReply,
    PredictorsReply,
    RetrainReply,
)
from joulecast import errors
from joulecast.measurement import Row
from rpc import DEFAULT_SERVER
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb
from rpc.generated import estimator_pb2_grpc as pb_grpc

STREAM_THRESHOLD = 1 * MiB
"""Graphs above this size (after stripping) go through the streaming RPC."""

CONNECT_TIMEOUT_S = 2.0


class RemoteError(errors.JoulecastError):
    """A call failed; ``code`` is the gRPC status name (``INVALID_ARGUMENT``...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class RemoteInvalidArgument(RemoteError, errors.InvalidArgument):
    pass


class RemoteResourceLimit(RemoteError, errors.ResourceLimit):
    pass


class RemoteFailedPrecondition(RemoteError, errors.FailedPrecondition):
    pass


class RemoteUnauthenticated(RemoteError, errors.Unauthenticated):
    pass


class RemoteNotFound(RemoteError, errors.NotFound):
    pass


_REMOTE = {
    grpc.StatusCode.INVALID_ARGUMENT: RemoteInvalidArgument,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RemoteResourceLimit,
    grpc.StatusCode.FAILED_PRECONDITION: RemoteFailedPrecondition,
    grpc.StatusCode.NOT_FOUND: RemoteNotFound,
    grpc.StatusCode.UNAUTHENTICATED: RemoteUnauthenticated,
}


class EstimatorClient(PredictCaller):
    """A channel to one server. ``token`` is sent on state-changing calls only; ``root_cert``
    (PEM bytes) switches to TLS and trusts that certificate authority."""

    def __init__(
        self,
        address: str = DEFAULT_SERVER,
        *,
        token: str | None = None,
        root_cert: bytes | None = None,
        timeout_s: float | None = 120.0,
        max_message_bytes: int = 16 * MiB,
    ) -> None:
        self.address = address
        self._token = token
        self._timeout_s = timeout_s
        options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if root_cert is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_cert)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._stub = pb_grpc.EnergyEstimatorStub(self._channel)
        self._connected = False

    def _connect(self) -> None:
        """Fail within :data:`CONNECT_TIMEOUT_S` (or the call timeout, if shorter) when the
        server cannot be reached, rather than at the end of a long call deadline."""
        if self._connected:
            return
        wait = (
            CONNECT_TIMEOUT_S
            if self._timeout_s is None
            else min(CONNECT_TIMEOUT_S, self._timeout_s)
        )
        if not self.ready(wait):
            raise RemoteError(
                f"cannot reach the server at {self.address} within {wait:g} s", "UNAVAILABLE"
            )

    def ready(self, timeout_s: float) -> bool:
        """True when the server accepts a connection within ``timeout_s`` seconds (calls then
        skip the wait); ``joulecast predict`` asks the default server this before answering
        in-process instead."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            return False
        self._connected = True
        return True

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> EstimatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, exc: grpc.RpcError) -> RemoteError:
        code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
        details = (exc.details() if hasattr(exc, "details") else None) or str(exc)
        if code == grpc.StatusCode.UNAVAILABLE:
            return RemoteError(f"cannot reach the server at {self.address}: {details}", code.name)
        return _REMOTE.get(code, RemoteError)(f"{details} ({code.name})", code.name)

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(self._token) if self._token else ()

    def _predict(
        self, onnx_model: bytes, args: PredictArgs, *, stream: bool | None, chunk_bytes: int
    ) -> PredictionReply:
        options = args.options()
        if stream is None:
            stream = len(onnx_model) > STREAM_THRESHOLD
        self._connect()
        try:
            if stream:
                response = self._stub.PredictEnergyStream(
                    convert.predict_chunks(onnx_model, options, chunk_bytes),
                    timeout=self._timeout_s,
                )
            else:
                response = self._stub.PredictEnergy(
                    convert.predict_request(onnx_model, options), timeout=self._timeout_s
                )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return convert.prediction_from_response(response)

    def add_measurements(self, rows: Iterable[tuple[Row, bytes | None]]) -> MeasurementsReply:
        """Send ``(row, graph)`` pairs in one call; each graph is sent once per call (later
        rows name it by hash). Returns accepted/rejected counts and per-row results."""

        def messages() -> Iterator[pb.MeasurementRow]:
            sent: set[str] = set()
            for row, graph in rows:
                if graph is not None and row.graph_sha256 in sent:
                    graph = None
                elif graph is not None and row.graph_sha256:
                    sent.add(row.graph_sha256)
                yield convert.message_from_row(row, graph)

        self._connect()
        try:
            response = self._stub.AddMeasurements(
                messages(), metadata=self._metadata(), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return convert.measurements_from_response(response)

    def retrain(
        self, hardware: str, timeout_s: float | None = None, allow_idle_meter: bool = False
    ) -> RetrainReply:
        """Refit ``hardware`` on the server's store; ``allow_idle_meter`` fits GPU rows whose
        power never left an idle board's (the server refuses them by default)."""
        self._connect()
        try:
            response = self._stub.Retrain(
                convert.retrain_request(hardware, allow_idle_meter),
                metadata=self._metadata(),
                timeout=timeout_s,
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return convert.retrain_from_response(response)

    def delete_measurements(self, run_keys: list[str]) -> DeleteReply:
        """Delete stored rows by run key: how many went, and the keys not stored."""
        self._connect()
        try:
            response = self._stub.DeleteMeasurements(
                convert.delete_request(run_keys),
                metadata=self._metadata(),
                timeout=self._timeout_s,
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return convert.deleted_from_response(response)

    def list_predictors(self) -> PredictorsReply:
        self._connect()
        try:
            response = self._stub.ListPredictors(
                convert.list_predictors_request(), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return convert.predictors_from_response(response)


PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


def read_root_cert(path: str | Path | None) -> bytes | None:
    """The PEM root certificate(s) at ``path``; InvalidArgument for a file that holds none (grpc
    would print its C library's errors and then fail every call as an unreachable server)."""
    if path is None:
        return None
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise errors.InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc
    if PEM_CERTIFICATE not in data:
        raise errors.InvalidArgument(
            f"{path} holds no PEM certificate (a '{PEM_CERTIFICATE.decode()}' block): "
            "--tls-ca takes the server's root certificate in PEM"
        )
    return data
