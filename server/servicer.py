"""The gRPC adapter of :class:`~server.core.EstimatorCore`: decode, call, encode.

Each method is wrapped by :func:`~server.errors.grpc_errors`, which picks the status code of
any error; state-changing methods check the token before reading their stream.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TypeVar

import grpc

from server import converters
from server.auth import TokenCheck
from server.core import EstimatorCore
from server.errors import grpc_errors
from server.generated import estimator_pb2 as pb
from server.generated import estimator_pb2_grpc as pb_grpc

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


class EnergyEstimatorServicer(pb_grpc.EnergyEstimatorServicer):
    def __init__(self, core: EstimatorCore, auth: TokenCheck, max_graph_bytes: int) -> None:
        self._core = core
        self._auth = auth
        self._max_graph_bytes = max_graph_bytes

    @grpc_errors
    def PredictEnergy(
        self, request: pb.PredictEnergyRequest, context: grpc.ServicerContext
    ) -> pb.PredictEnergyResponse:
        query = converters.query_from_request(request)
        return converters.response_from_result(self._core.predict(query))

    @grpc_errors
    def PredictEnergyStream(
        self, request_iterator: Iterator[pb.PredictEnergyChunk], context: grpc.ServicerContext
    ) -> pb.PredictEnergyResponse:
        query = converters.query_from_chunks(request_iterator, self._max_graph_bytes)
        return converters.response_from_result(self._core.predict(query))

    @grpc_errors
    def AddMeasurements(
        self, request_iterator: Iterator[pb.MeasurementRow], context: grpc.ServicerContext
    ) -> pb.AddMeasurementsResponse:
        self._auth.require(context.invocation_metadata())
        rows = converters.incoming_from_messages(_whole_stream(request_iterator, context))
        verdicts = self._core.add_measurements(rows)
        return converters.response_from_verdicts(verdicts)

    @grpc_errors
    def Retrain(
        self, request: pb.RetrainRequest, context: grpc.ServicerContext
    ) -> pb.RetrainResponse:
        self._auth.require(context.invocation_metadata())
        return converters.response_from_retrain(self._core.retrain(request.hardware))

    @grpc_errors
    def ListPredictors(
        self, request: pb.ListPredictorsRequest, context: grpc.ServicerContext
    ) -> pb.ListPredictorsResponse:
        described, default = self._core.describe()
        return converters.response_from_predictors(described, default)
