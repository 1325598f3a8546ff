"""Protobuf <-> domain objects, at the edge: no message travels past this module.

Server side: requests become :class:`~server.core.PredictQuery` and
:class:`~server.measurements.IncomingRow`; results become responses. Client side: domain
rows become messages, and responses become the JSON of docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from joulecast.errors import InvalidArgument, ResourceLimit
from joulecast.measurement import ROW_COLUMNS, Row
from server.core import PredictQuery, PredictResult, RetrainResult
from server.generated import estimator_pb2 as pb
from server.measurements import IncomingRow, RowVerdict

_OPTION_FIELDS = ("batch_size", "samples", "epochs", "hardware")
_PROFILE_FIELDS = (
    "family",
    "family_reason",
    "params",
    "flops_forward",
    "flops_train",
    "weight_bytes",
    "activation_bytes",
    "arithmetic_intensity",
    "recurrent_steps",
    "depth",
    "node_count",
)
_ROW_OPTIONAL = frozenset(
    f.name for f in pb.MeasurementRow.DESCRIPTOR.fields if f.has_presence and f.name in ROW_COLUMNS
)
_PHASE_FIELDS = ("energy_j", "energy_low_j", "energy_high_j", "duration_s")


# -- predict (server side) ----------------------------------------------------------------


def _query(onnx_model: bytes, options: pb.PredictEnergyRequest | pb.PredictOptions) -> PredictQuery:
    util = options.observed_gpu_util if options.HasField("observed_gpu_util") else None
    return PredictQuery(
        onnx_model=onnx_model,
        batch_size=options.batch_size,
        samples=options.samples,
        epochs=options.epochs,
        hardware=options.hardware or None,
        observed_gpu_util=util,
    )


def query_from_request(request: pb.PredictEnergyRequest) -> PredictQuery:
    return _query(request.onnx_model, request)


MAX_STREAM_CHUNKS = 16_384
"""Most chunks in one streamed graph: empty chunks add no bytes, so the byte cap alone would
let an endless stream of them hold a worker until the client's deadline (64 MiB in 16,384
chunks is 4 KiB a chunk; the client sends 1 MiB chunks)."""


def query_from_chunks(chunks: Iterable[pb.PredictEnergyChunk], max_bytes: int) -> PredictQuery:
    """Reassemble a streamed graph. Options come in the first chunk only; the total is capped
    at ``max_bytes`` and the count at :data:`MAX_STREAM_CHUNKS` (checked as chunks arrive, so
    an endless stream is cut short)."""
    options: pb.PredictOptions | None = None
    parts: list[bytes] = []
    total = 0
    for n, chunk in enumerate(chunks):
        if n >= MAX_STREAM_CHUNKS:
            raise ResourceLimit(
                f"stream has more than {MAX_STREAM_CHUNKS} chunks; send larger chunks"
            )
        if n == 0:
            if not chunk.HasField("options"):
                raise InvalidArgument("the first chunk must carry the options")
            options = chunk.options
        elif chunk.HasField("options"):
            raise InvalidArgument(f"chunk {n} carries options; only the first chunk may")
        total += len(chunk.data)
        if total > max_bytes:
            raise ResourceLimit(f"streamed graph exceeds the server's limit of {max_bytes} bytes")
        parts.append(chunk.data)
    if options is None:
        raise InvalidArgument("empty stream: no options and no graph")
    return _query(b"".join(parts), options)


def _phase(estimate: Any) -> pb.PhasePrediction:
    if estimate is None:
        return pb.PhasePrediction(available=False)
    phase = pb.PhasePrediction(
        available=True,
        energy_j=float(estimate.energy_j),
        energy_low_j=float(estimate.energy_low_j),
        energy_high_j=float(estimate.energy_high_j),
        predictor=str(estimate.predictor),
    )
    if estimate.duration_s is not None:
        phase.duration_s = float(estimate.duration_s)
    return phase


def response_from_result(result: PredictResult) -> pb.PredictEnergyResponse:
    profile = result.profile
    prediction = result.prediction
    return pb.PredictEnergyResponse(
        profile=pb.GraphProfile(
            **{name: getattr(profile, name) for name in _PROFILE_FIELDS},
            flops_by_kind={str(k): int(v) for k, v in profile.flops_by_kind.items()},
        ),
        train=_phase(prediction.train),
        test=_phase(prediction.test),
        hardware=prediction.hardware,
        predictor_version=str(prediction.predictor_version),
        energy_source=prediction.energy_source,
        energy_is_estimate=bool(prediction.energy_is_estimate),
        warnings=list(result.warnings),
    )


# -- measurements ------------------------------------------------------------------------


def incoming_from_messages(messages: Iterable[pb.MeasurementRow]) -> Iterator[IncomingRow]:
    for index, message in enumerate(messages):
        yield incoming_from_message(index, message)


def incoming_from_message(index: int, message: pb.MeasurementRow) -> IncomingRow:
    values: dict[str, Any] = {}
    for name in ROW_COLUMNS:
        if name in _ROW_OPTIONAL and not message.HasField(name):
            values[name] = None
        else:
            values[name] = getattr(message, name)
    graph = bytes(message.graph_onnx) if message.graph_onnx else None
    return IncomingRow(index=index, row=Row(**values), graph=graph)


def message_from_row(row: Row, graph: bytes | None) -> pb.MeasurementRow:
    """Client side: one stored row (and its graph, or ``None`` to name it by hash only)."""
    values = {k: v for k, v in dataclasses.asdict(row).items() if v is not None}
    if graph is not None:
        values["graph_onnx"] = graph
    return pb.MeasurementRow(**values)


def response_from_verdicts(verdicts: list[RowVerdict]) -> pb.AddMeasurementsResponse:
    accepted = sum(v.accepted for v in verdicts)
    return pb.AddMeasurementsResponse(
        results=[
            pb.RowResult(index=v.index, run_key=v.run_key, accepted=v.accepted, reason=v.reason)
            for v in verdicts
        ],
        accepted=accepted,
        rejected=len(verdicts) - accepted,
    )


def verdicts_to_json(response: pb.AddMeasurementsResponse) -> dict[str, Any]:
    return {
        "accepted": response.accepted,
        "rejected": response.rejected,
        "results": [
            {"index": r.index, "run_key": r.run_key, "accepted": r.accepted, "reason": r.reason}
            for r in response.results
        ],
    }


# -- retrain and predictors ----------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def response_from_retrain(result: RetrainResult) -> pb.RetrainResponse:
    return pb.RetrainResponse(
        hardware=result.hardware,
        version=result.version,
        selected=result.selected,
        scores_json=_json(result.scores),
    )


def retrain_to_json(response: pb.RetrainResponse) -> dict[str, Any]:
    return {
        "hardware": response.hardware,
        "version": response.version,
        "selected": response.selected,
        "scores": json.loads(response.scores_json) if response.scores_json else None,
    }


def _text(info: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = info.get(key)
        if isinstance(value, Mapping):  # per phase: {"train": "boosted", "test": "affine"}
            return ", ".join(f"{k}={v}" for k, v in value.items())
        if value is not None:
            return str(value)
    return ""


def response_from_predictors(
    described: list[dict[str, Any]], default_hardware: str | None
) -> pb.ListPredictorsResponse:
    return pb.ListPredictorsResponse(
        predictors=[
            pb.PredictorInfo(
                hardware=_text(info, "hardware"),
                version=_text(info, "version", "predictor_version"),
                selected=_text(info, "selected", "predictor"),
                energy_source=_text(info, "energy_source"),
                energy_is_estimate=bool(info.get("energy_is_estimate", False)),
                details_json=_json(info),
            )
            for info in described
        ],
        default_hardware=default_hardware or "",
    )


def predictors_to_json(response: pb.ListPredictorsResponse) -> dict[str, Any]:
    return {
        "default_hardware": response.default_hardware or None,
        "predictors": [json.loads(p.details_json) for p in response.predictors],
    }


# -- client side: requests and the JSON of docs/ARCHITECTURE.md ---------------------------------------


def predict_options(
    batch_size: int,
    samples: int,
    epochs: int,
    hardware: str | None,
    observed_gpu_util: float | None,
) -> dict[str, Any]:
    """Keyword arguments shared by PredictEnergyRequest and PredictOptions."""
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "samples": samples,
        "epochs": epochs,
        "hardware": hardware or "",
    }
    if observed_gpu_util is not None:
        options["observed_gpu_util"] = observed_gpu_util
    return options


def predict_request(onnx_model: bytes, options: Mapping[str, Any]) -> pb.PredictEnergyRequest:
    return pb.PredictEnergyRequest(onnx_model=onnx_model, **options)


def predict_chunks(
    onnx_model: bytes, options: Mapping[str, Any], chunk_bytes: int
) -> Iterator[pb.PredictEnergyChunk]:
    yield pb.PredictEnergyChunk(options=pb.PredictOptions(**options), data=onnx_model[:chunk_bytes])
    for start in range(chunk_bytes, len(onnx_model), chunk_bytes):
        yield pb.PredictEnergyChunk(data=onnx_model[start : start + chunk_bytes])


def _phase_json(phase: pb.PhasePrediction) -> dict[str, Any] | None:
    if not phase.available:
        return None
    out: dict[str, Any] = {name: getattr(phase, name) for name in _PHASE_FIELDS}
    if not phase.HasField("duration_s"):
        out["duration_s"] = None
    out["predictor"] = phase.predictor
    return out


def response_to_json(response: pb.PredictEnergyResponse) -> dict[str, Any]:
    """The client's JSON (docs/ARCHITECTURE.md): an unavailable phase is ``null``, never a number."""
    profile = response.profile
    return {
        "family": profile.family,
        "family_reason": profile.family_reason,
        "params": profile.params,
        "flops_forward": profile.flops_forward,
        "flops_train": profile.flops_train,
        "flops_by_kind": dict(sorted(profile.flops_by_kind.items())),
        "train": _phase_json(response.train),
        "test": _phase_json(response.test),
        "hardware": response.hardware,
        "predictor_version": response.predictor_version,
        "energy_source": response.energy_source,
        "energy_is_estimate": response.energy_is_estimate,
        "warnings": list(response.warnings),
    }
