"""Domain errors -> gRPC status codes: the one place where a status code is chosen.

Every servicer method is wrapped by :func:`grpc_errors`. A :class:`JoulecastError` becomes the
code of :data:`STATUS_OF` with the error's message; anything else is a bug: it is logged with
its traceback and answered with INTERNAL, and the server keeps serving.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from joulecast.errors import (
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    JoulecastError,
    NotFound,
    ResourceLimit,
    Unauthenticated,
)
from server.wire import Malformed

logger = logging.getLogger(__name__)

MAX_DETAILS = 2000
"""Longest status message sent (a hostile graph must not make the reply huge)."""

# Order matters: the first matching class wins (subclasses before their parents).
STATUS_OF: tuple[tuple[type[JoulecastError], grpc.StatusCode], ...] = (
    (ResourceLimit, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    # Unknown hardware: NOT_FOUND, its message listing the hardware that exists.
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    # The caller left or its deadline passed: its work was stopped (nobody reads this).
    (Cancelled, grpc.StatusCode.CANCELLED),
)

F = TypeVar("F", bound=Callable[..., Any])


def status_of(exc: BaseException) -> grpc.StatusCode:
    """The status code of ``exc`` (INTERNAL for anything that is not a JoulecastError)."""
    for cls, code in STATUS_OF:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _details(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= MAX_DETAILS else text[: MAX_DETAILS - 3] + "..."


def _parsed(stream: Iterator[object]) -> Iterator[object]:
    """The messages of a request stream; InvalidArgument at the first one that did not
    parse (the method's own error handling answers it)."""
    for message in stream:
        if isinstance(message, Malformed):
            raise InvalidArgument(message.details())
        yield message


def grpc_errors(method: F) -> F:
    """Wrap a servicer method ``(self, request_or_iterator, context)`` so that errors become
    status codes. ``context.abort`` raises, which ends the call with that status."""

    @functools.wraps(method)
    def wrapper(self: object, request: object, context: grpc.ServicerContext) -> object:
        if isinstance(request, Malformed):
            logger.info("%s -> INVALID_ARGUMENT: %s", method.__name__, request.details())
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.details())
        if hasattr(request, "__next__"):  # a request stream: each message may be malformed
            request = _parsed(request)
        try:
            return method(self, request, context)
        except JoulecastError as exc:
            code = status_of(exc)
            logger.info("%s -> %s: %s", method.__name__, code.name, _details(exc))
            context.abort(code, _details(exc))
        except grpc.RpcError:
            # Reading the request stream failed: the client cancelled or its deadline passed.
            # Not a server bug, and nobody is left to read a status.
            logger.info("%s: the client went away while streaming", method.__name__)
            context.abort(grpc.StatusCode.CANCELLED, "the request stream ended abnormally")
        except Exception:
            logger.exception("unexpected error in %s", method.__name__)
            context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}; see the server log"
            )
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    return wrapper  # type: ignore[return-value]
