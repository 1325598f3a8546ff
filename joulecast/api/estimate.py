"""``joulecast.Estimator``: predict a model's training and testing energy in one call.

In this process by default (the predictors under ``artifacts/``, profiled and answered as a
server would: :class:`joulecast.api.local.InProcessClient`), or from a server
(``Estimator(server="host:port")``, through :class:`client.remote.EstimatorClient`); the two give
the same :class:`~joulecast.api.prediction.Prediction` for the same question. Nothing heavy is
imported before the first prediction, and the predictors (or the channel) are kept for the next.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from joulecast.api.graphs import weightless_graph
from joulecast.api.prediction import Prediction
from joulecast.errors import InternalError, InvalidArgument, JoulecastError
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BATCH_SIZE = 8
DEFAULT_SAMPLES = 1578
"""The paper's clip count, as the CLI's ``--samples``."""
_PHASE_COLUMNS = ("energy_j", "energy_low_j", "energy_high_j", "duration_s", "power_w", "predictor")
_KWH_COLUMNS = ("energy_kwh", "energy_low_kwh", "energy_high_kwh")
_CO2_COLUMNS = ("co2_g", "co2_low_g", "co2_high_g")
_COST_COLUMNS = ("cost", "cost_low", "cost_high")


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgument(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _number(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument(f"{name} must be finite, got {value!r}")
    return number


def _text(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {value!r}")
    return value


class Estimator:
    """Predicts the energy of training and testing a model, with an interval.

    ``Estimator()`` answers in this process from the shipped predictors;
    ``Estimator("path/to/artifacts")`` from the predictors published there (``joulecast fit``);
    ``Estimator(server="host:port")`` asks a running ``joulecast serve`` (``tls_ca``: a PEM
    root certificate to connect with TLS; ``timeout_s`` per call). As a scikit-learn estimator,
    it only keeps its arguments until the first prediction loads the predictors (about 0.1 s)
    or opens the channel; both are then kept. Use it in a ``with`` block, or call
    :meth:`close`, to close a server's channel.
    """

    def __init__(
        self,
        artifacts: str | os.PathLike[str] | None = None,
        *,
        server: str | None = None,
        tls_ca: str | os.PathLike[str] | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        if artifacts is not None and server is not None:
            raise InvalidArgument(
                "give artifacts (answer in this process) or server (ask a server), not both"
            )
        self.artifacts = artifacts
        self.server = server
        self.tls_ca = tls_ca
        self.timeout_s = timeout_s
        self._answerer: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = f"server={self.server!r}" if self.server is not None else repr(self.artifacts)
        return f"Estimator({'' if self.artifacts is None and self.server is None else where})"

    def _client(self) -> Any:
        with self._lock:
            if self._answerer is None:
                if self.server is not None:
                    # gRPC or the estimator, only for the transport asked for
                    from client.remote import EstimatorClient, read_root_cert

                    self._answerer = EstimatorClient(
                        self.server,
                        root_cert=read_root_cert(self.tls_ca),
                        timeout_s=self.timeout_s,
                    )
                else:
                    # gRPC or the estimator, only for the transport asked for
                    from joulecast.api.local import InProcessClient

                    self._answerer = InProcessClient(self.artifacts)
            return self._answerer

    def close(self) -> None:
        """Close the server's channel (nothing to do in-process); the next call reopens it."""
        with self._lock:
            answerer, self._answerer = self._answerer, None
        if answerer is not None:
            answerer.close()

    def __enter__(self) -> Estimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def predict(
        self,
        model: Any,
        example_input: Any = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        samples: int = DEFAULT_SAMPLES,
        epochs: int = 1,
        hardware: str | None = None,
        region: str | None = None,
        price_per_kwh: float | None = None,
        observed_gpu_util: float | None = None,
        power_limit_w: float | None = None,
        precision: str | None = None,
    ) -> Prediction:
        """Predicted energy of training ``model`` on ``samples`` samples for ``epochs`` epochs
        and of testing it on ``samples`` samples, at ``batch_size``, on ``hardware`` (a
        published hardware's name; None: the default one).

        ``model``: a ``torch.nn.Module`` with ``example_input`` (a tensor shaped like one batch
        of its input; exported in memory, weights never kept), or an ONNX file's path, ONNX
        bytes or an ``onnx.ModelProto``. ``region`` (ISO 3166-1 alpha-3, e.g. ``"FRA"``) adds
        gCO2eq, ``price_per_kwh`` a cost. ``observed_gpu_util`` (%) is the GPU utilisation
        you measured, for a predictor that uses it; ``power_limit_w`` a GPU's power limit in W
        (None: the board's default), for a catalogued GPU; ``precision`` ``"tf32"`` asks for
        FP32 training with TF32 matrix products, ``"amp-fp16"`` or ``"amp-bf16"`` for
        mixed-precision training (the transfer model answers them; None: FP32). ``hardware``
        may also name a catalogued GPU nobody measured (``joulecast hardware``): the transfer
        model answers it.
        Raises a :class:`~joulecast.errors.JoulecastError`.
        """
        graph = weightless_graph(model, example_input)
        return self._ask(
            graph,
            batch_size=batch_size,
            samples=samples,
            epochs=epochs,
            hardware=hardware,
            region=region,
            price_per_kwh=price_per_kwh,
            observed_gpu_util=observed_gpu_util,
            power_limit_w=power_limit_w,
            precision=precision,
        )

    def predict_table(
        self,
        model: Any,
        example_input: Any = None,
        *,
        batch_sizes: Sequence[int],
        samples: int = DEFAULT_SAMPLES,
        epochs: int = 1,
        hardware: str | None = None,
        region: str | None = None,
        price_per_kwh: float | None = None,
        power_limit_w: float | None = None,
    ) -> pd.DataFrame | list[dict[str, Any]]:
        """One row per batch size (the model exported once): ``batch_size``, ``hardware``,
        ``tier``, ``power_limit_w``, ``train_energy_j``... (each field of :class:`~joulecast.api.prediction.PhaseEstimate`
        prefixed with its phase, None where a phase has no answer) and ``warnings``. A pandas
        DataFrame when pandas can be imported, else a list of dicts."""
        if isinstance(batch_sizes, str | bytes) or not isinstance(batch_sizes, Sequence):
            raise InvalidArgument(f"batch_sizes must be a list of integers, got {batch_sizes!r}")
        sizes = [_count("batch size", b) for b in batch_sizes]
        if not sizes:
            raise InvalidArgument("batch_sizes is empty")
        graph = weightless_graph(model, example_input)
        columns = list(_PHASE_COLUMNS)
        if region is not None or price_per_kwh is not None:
            columns += _KWH_COLUMNS
        if region is not None:
            columns += _CO2_COLUMNS
        if price_per_kwh is not None:
            columns += _COST_COLUMNS
        rows = []
        for size in sizes:
            answer = self._ask(
                graph,
                batch_size=size,
                samples=samples,
                epochs=epochs,
                hardware=hardware,
                region=region,
                price_per_kwh=price_per_kwh,
                power_limit_w=power_limit_w,
            )
            row: dict[str, Any] = {
                "batch_size": size,
                "hardware": answer.hardware,
                "tier": answer.tier,
                "energy_source": answer.energy_source,
                "energy_is_estimate": answer.energy_is_estimate,
                "power_limit_w": answer.power_limit_w,
            }
            for name in PHASES:
                phase = getattr(answer, name)
                row.update({f"{name}_{c}": getattr(phase, c, None) for c in columns})
            row["warnings"] = answer.warnings
            rows.append(row)
        try:
            # gRPC or the estimator, only for the transport asked for
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)

    def _ask(
        self,
        graph: bytes,
        *,
        batch_size: int,
        samples: int,
        epochs: int,
        hardware: str | None,
        region: str | None,
        price_per_kwh: float | None,
        observed_gpu_util: float | None = None,
        power_limit_w: float | None = None,
        precision: str | None = None,
    ) -> Prediction:
        options: dict[str, Any] = {
            "batch_size": _count("batch_size", batch_size),
            "samples": _count("samples", samples),
            "epochs": _count("epochs", epochs),
            "hardware": _text("hardware", hardware),
            "region": _text("region", region),
            "price_per_kwh": _number("price_per_kwh", price_per_kwh),
            "observed_gpu_util": _number("observed_gpu_util", observed_gpu_util),
            "power_limit_w": _number("power_limit_w", power_limit_w),
            "precision": _text("precision", precision),
        }
        client = self._client()
        try:
            reply = client.predict(graph, **options)
        except JoulecastError:
            raise
        except Exception as exc:
            # gRPC and protobuf errors never reach the caller as such.
            raise InternalError(f"internal error while predicting: {exc!r}") from exc
        return Prediction.from_reply(reply)
