"""Server side of protobuf <-> domain objects, at the edge: no message travels past here.

Requests become :class:`~server.core.PredictQuery` and :class:`~server.measurements.IncomingRow`;
results become responses. The client's conversions are in :mod:`client.convert`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from joulecast.carbon import PhaseFootprint
from joulecast.errors import InvalidArgument, ResourceLimit
from joulecast.measurement import ROW_COLUMNS, Row
from rpc.generated import estimator_pb2 as pb
from rpc.records import RowVerdict
from server.core import PredictQuery, PredictResult, RetrainResult
from server.measurements import IncomingRow

if TYPE_CHECKING:
    from estimator.answers import PhaseEstimate
    from estimator.description import PredictorDescription

_PROFILE_FIELDS = tuple(
    f.name for f in pb.GraphProfile.DESCRIPTOR.fields if f.name != "flops_by_kind"
)
"""The scalar fields of a GraphProfile message, each an attribute of the domain profile."""
_PREDICTOR_FIELDS = ("hardware", "version", "energy_source", "energy_is_estimate")
_ROW_OPTIONAL = frozenset(
    f.name for f in pb.MeasurementRow.DESCRIPTOR.fields if f.has_presence and f.name in ROW_COLUMNS
)


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
        region=options.region if options.HasField("region") else None,
        price_per_kwh=options.price_per_kwh if options.HasField("price_per_kwh") else None,
        power_limit_w=options.power_limit_w if options.HasField("power_limit_w") else None,
        precision=options.precision if options.HasField("precision") else None,
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


def _phase(estimate: PhaseEstimate | None) -> pb.PhasePrediction:
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
    if estimate.power_w is not None:
        phase.power_w = float(estimate.power_w)
    return phase


def _footprint(footprint: PhaseFootprint) -> pb.PhaseFootprint:
    return pb.PhaseFootprint(
        **{k: v for k, v in dataclasses.asdict(footprint).items() if v is not None}
    )


def response_from_result(result: PredictResult) -> pb.PredictEnergyResponse:
    profile = result.profile
    prediction = result.prediction
    response = pb.PredictEnergyResponse(
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
        tier=str(getattr(prediction, "tier", "measured")),
    )
    limit = getattr(prediction, "power_limit_w", None)
    if limit is not None:
        response.power_limit_w = float(limit)
    precision = getattr(prediction, "precision", None)
    if precision is not None:
        response.precision = str(precision)
    for phase, footprint in result.footprints:
        getattr(response, phase).footprint.CopyFrom(_footprint(footprint))
    if result.grid is not None:
        response.grid.CopyFrom(pb.GridIntensity(**dataclasses.asdict(result.grid)))
    if result.price_per_kwh is not None:
        response.price_per_kwh = result.price_per_kwh
    return response


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


# -- retrain and predictors ----------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def response_from_retrain(result: RetrainResult) -> pb.RetrainResponse:
    return pb.RetrainResponse(
        hardware=result.hardware,
        version=result.version,
        selected=result.selected,
        scores_json=_json(result.scores),
        energy_source=result.energy_source,
        energy_is_estimate=result.energy_is_estimate,
    )


def response_from_deleted(deleted: int, missing: list[str]) -> pb.DeleteMeasurementsResponse:
    return pb.DeleteMeasurementsResponse(deleted=deleted, missing=missing)


def response_from_predictors(
    described: list[PredictorDescription], default_hardware: str | None
) -> pb.ListPredictorsResponse:
    return pb.ListPredictorsResponse(
        predictors=[
            pb.PredictorInfo(
                **{k: getattr(d, k) for k in _PREDICTOR_FIELDS},
                selected=d.selected_text(),
                details_json=_json(d.as_dict()),
            )
            for d in described
        ],
        default_hardware=default_hardware or "",
    )
