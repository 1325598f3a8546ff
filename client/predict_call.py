"""One prediction call, whoever answers it: its keyword options, named once.

:class:`client.remote.EstimatorClient` (a server, over gRPC) and
:class:`joulecast.api.local.InProcessClient` (this process) take the same ``predict`` arguments
and return the same :class:`~client.results.PredictionReply`; they differ only in how the
request travels. Both are a :class:`PredictCaller`. This module imports no gRPC: the
in-process client stands on it without loading a channel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from client import convert
from client.results import PredictionReply

MiB = 1024 * 1024
CHUNK_BYTES = 1 * MiB
"""Size of one message of the streaming RPC."""


@dataclass(frozen=True)
class PredictArgs:
    """The options of one call as the caller gave them (checked by :meth:`options`)."""

    batch_size: int
    samples: int
    epochs: int
    hardware: str | None
    observed_gpu_util: float | None
    region: str | None
    price_per_kwh: float | None
    power_limit_w: float | None
    precision: str | None = None

    def options(self) -> dict[str, Any]:
        """The request's option fields (:func:`client.convert.predict_options`)."""
        return convert.predict_options(
            self.batch_size,
            self.samples,
            self.epochs,
            self.hardware,
            self.observed_gpu_util,
            self.region,
            self.price_per_kwh,
            self.power_limit_w,
            self.precision,
        )


class PredictCaller(ABC):
    """Something that answers :meth:`predict`; a subclass says how the call travels."""

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
        region: str | None = None,
        price_per_kwh: float | None = None,
        power_limit_w: float | None = None,
        precision: str | None = None,
    ) -> PredictionReply:
        """Predict for one graph (its ``as_dict()`` is the JSON of docs/ARCHITECTURE.md).
        ``stream`` and ``chunk_bytes`` say how a server is sent the graph (``stream`` ``None``:
        stream only graphs above :data:`client.remote.STREAM_THRESHOLD`); an answer in this
        process ignores both."""
        args = PredictArgs(
            batch_size,
            samples,
            epochs,
            hardware,
            observed_gpu_util,
            region,
            price_per_kwh,
            power_limit_w,
            precision,
        )
        return self._predict(onnx_model, args, stream=stream, chunk_bytes=chunk_bytes)

    @abstractmethod
    def _predict(
        self, onnx_model: bytes, args: PredictArgs, *, stream: bool | None, chunk_bytes: int
    ) -> PredictionReply:
        """The answer for ``args``, the call travelling this subclass's way."""
