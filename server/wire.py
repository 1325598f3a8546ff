"""The service's handlers, with request parsing that never fails inside gRPC.

grpcio parses a request before any servicer code runs; bytes that are no message of the
request's type (invalid UTF-8 in a string field, a truncated varint) end the call INTERNAL
"Exception deserializing request!" with a traceback in the server log, as if the server had
failed. Here a request that does not parse reaches the servicer as :class:`Malformed`, and
:func:`server.errors.grpc_errors` answers it INVALID_ARGUMENT with the parser's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from rpc.generated import estimator_pb2 as pb

SERVICE = pb.DESCRIPTOR.services_by_name["EnergyEstimator"]


@dataclass(frozen=True)
class Malformed:
    """A request (or one message of a request stream) that did not parse."""

    message_type: str
    reason: str

    def details(self) -> str:
        return f"the request is not a valid {self.message_type} message: {self.reason}"


def tolerant_parser(message_class: Any) -> Callable[[bytes], object]:
    """``message_class.FromString``, returning :class:`Malformed` instead of raising."""

    def parse(data: bytes) -> object:
        try:
            return message_class.FromString(data)
        except Exception as exc:  # DecodeError, UnicodeDecodeError: whatever the bytes were
            return Malformed(message_class.DESCRIPTOR.name, str(exc) or type(exc).__name__)

    return parse


_HANDLERS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_servicer(servicer: object, server: grpc.Server) -> None:
    """Register every method of the EnergyEstimator service on ``server`` (what the generated
    ``add_EnergyEstimatorServicer_to_server`` does, with :func:`tolerant_parser`)."""
    handlers = {}
    for method in SERVICE.methods:
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        make = _HANDLERS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=tolerant_parser(request),
            response_serializer=response.SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE.full_name, handlers),)
    )
