"""The prediction service in this process: :class:`EstimatorClient`'s ``predict``, no gRPC.

For a user's own graph in the user's own process (``joulecast.Estimator()``, ``joulecast
predict --local``). Everything but the transport is the server's: the request message the
client would send, converted as the servicer converts it; :class:`~server.core.EstimatorCore`
over :class:`~estimator.service.PredictorRegistry` (the same graph limits, profile and answer
caches, carbon and cost); the response converted as the client converts it. So an answer here
is field for field the answer of a server on the same artifacts, and a field added to the
contract reaches both.

What differs: the graph is profiled in the calling thread. The server profiles untrusted
uploads in killable worker processes under a deadline and a memory cap; here the graph's owner
is the caller, and a pool would cost a second of start-up per process. Nothing is written: no
measurement store, and no clean-up of the artifacts folder (it may be read-only).
"""

from __future__ import annotations

import logging
from pathlib import Path

from client import convert
from client.predict_call import PredictArgs, PredictCaller
from client.results import PredictionReply
from estimator.service import PredictorRegistry
from joulecast.errors import InternalError, InvalidArgument, JoulecastError, ResourceLimit
from joulecast.graph import GraphLimits
from server import converters
from server.core import EstimatorCore
from server.settings import DEFAULT_ARTIFACTS, ServerSettings

logger = logging.getLogger(__name__)


class InProcessClient(PredictCaller):
    """Answers predictions from the predictors published under ``artifacts_dir``.

    ``settings`` gives the bounds a server would apply (graph size, cache sizes); by default a
    server's defaults. The predictors are loaded here, once (about 0.1 s for the shipped ones).
    """

    def __init__(
        self,
        artifacts_dir: Path | str | None = None,
        *,
        settings: ServerSettings | None = None,
    ) -> None:
        artifacts = Path(artifacts_dir) if artifacts_dir is not None else DEFAULT_ARTIFACTS
        if not artifacts.is_dir():
            raise InvalidArgument(f"artifacts folder {artifacts} does not exist")
        settings = settings or ServerSettings(artifacts_dir=artifacts)
        self.artifacts_dir = artifacts
        self.registry = PredictorRegistry(artifacts)
        self._core = EstimatorCore(
            self.registry,
            artifacts_dir=artifacts,
            graph_limits=GraphLimits(max_bytes=settings.max_graph_bytes),
            profile_cache_size=settings.profile_cache_size,
            answer_cache_size=settings.answer_cache_size,
        )

    def _predict(
        self, onnx_model: bytes, args: PredictArgs, *, stream: bool | None, chunk_bytes: int
    ) -> PredictionReply:
        """What :meth:`client.remote.EstimatorClient.predict` returns for the same arguments
        (``stream`` and ``chunk_bytes`` are accepted and mean nothing here)."""
        del stream, chunk_bytes
        try:
            options = args.options()
            request = convert.predict_request(onnx_model, options)
        except (TypeError, ValueError) as exc:  # a value the request message cannot carry
            raise InvalidArgument(f"cannot make a request of these options: {exc}") from exc
        query = converters.query_from_request(request)
        try:
            result = self._core.predict(query)
        except JoulecastError:
            raise
        except (RecursionError, MemoryError) as exc:
            # A server's profiling worker dies of these, and the call gets RESOURCE_EXHAUSTED.
            raise ResourceLimit(
                f"profiling this graph exhausted the process ({type(exc).__name__}); refused"
            ) from exc
        except Exception as exc:
            # The server answers INTERNAL here and logs the traceback; so does this.
            logger.exception("unexpected error while predicting in-process")
            raise InternalError(f"internal error while predicting: {exc!r}") from exc
        return convert.prediction_from_response(converters.response_from_result(result))

    def close(self) -> None:
        """Nothing to release (the same interface as the remote client)."""

    def __enter__(self) -> InProcessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
