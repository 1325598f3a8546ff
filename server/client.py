"""A small client of the EnergyEstimator service (used by the CLI and the benchmark).

It speaks domain objects and plain dicts; gRPC errors come back as :class:`RemoteError`
subclasses of the project's errors, carrying the server's message.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import grpc

from joulecast.errors import (
    FailedPrecondition,
    InvalidArgument,
    JoulecastError,
    ResourceLimit,
    Unauthenticated,
)
from joulecast.measurement import Row
from server import converters
from server.auth import bearer_metadata
from server.generated import estimator_pb2 as pb
from server.generated import estimator_pb2_grpc as pb_grpc

MiB = 1024 * 1024
STREAM_THRESHOLD = 1 * MiB
"""Graphs above this size (after stripping) go through the streaming RPC."""
CHUNK_BYTES = 1 * MiB
DEFAULT_SERVER = "localhost:50051"


class RemoteError(JoulecastError):
    """A call failed; ``code`` is the gRPC status name (``INVALID_ARGUMENT``...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class RemoteInvalidArgument(RemoteError, InvalidArgument):
    pass


class RemoteResourceLimit(RemoteError, ResourceLimit):
    pass


class RemoteFailedPrecondition(RemoteError, FailedPrecondition):
    pass


class RemoteUnauthenticated(RemoteError, Unauthenticated):
    pass


_REMOTE = {
    grpc.StatusCode.INVALID_ARGUMENT: RemoteInvalidArgument,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RemoteResourceLimit,
    grpc.StatusCode.FAILED_PRECONDITION: RemoteFailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: RemoteUnauthenticated,
}


class EstimatorClient:
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

    def predict(
        self,
        onnx_model: bytes,
        *,
        batch_size: int = 8,
        samples: int = 1578,
        epochs: int = 1,
        hardware: str | None = None,
        observed_gpu_util: float | None = None,
        stream: bool | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> dict[str, Any]:
        """Predict for one graph; returns the JSON of docs/ARCHITECTURE.md. ``stream`` ``None``: stream
        only graphs above :data:`STREAM_THRESHOLD`."""
        options = converters.predict_options(
            batch_size, samples, epochs, hardware, observed_gpu_util
        )
        if stream is None:
            stream = len(onnx_model) > STREAM_THRESHOLD
        try:
            if stream:
                response = self._stub.PredictEnergyStream(
                    converters.predict_chunks(onnx_model, options, chunk_bytes),
                    timeout=self._timeout_s,
                )
            else:
                response = self._stub.PredictEnergy(
                    converters.predict_request(onnx_model, options), timeout=self._timeout_s
                )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return converters.response_to_json(response)

    def add_measurements(self, rows: Iterable[tuple[Row, bytes | None]]) -> dict[str, Any]:
        """Send ``(row, graph)`` pairs in one call; each graph is sent once per call (later
        rows name it by hash). Returns accepted/rejected counts and per-row results."""

        def messages() -> Iterator[pb.MeasurementRow]:
            sent: set[str] = set()
            for row, graph in rows:
                if graph is not None and row.graph_sha256 in sent:
                    graph = None
                elif graph is not None and row.graph_sha256:
                    sent.add(row.graph_sha256)
                yield converters.message_from_row(row, graph)

        try:
            response = self._stub.AddMeasurements(
                messages(), metadata=self._metadata(), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return converters.verdicts_to_json(response)

    def retrain(self, hardware: str, timeout_s: float | None = None) -> dict[str, Any]:
        try:
            response = self._stub.Retrain(
                pb.RetrainRequest(hardware=hardware), metadata=self._metadata(), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return converters.retrain_to_json(response)

    def list_predictors(self) -> dict[str, Any]:
        try:
            response = self._stub.ListPredictors(
                pb.ListPredictorsRequest(), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        return converters.predictors_to_json(response)


def read_root_cert(path: str | Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from exc
