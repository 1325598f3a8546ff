"""Client side of protobuf <-> domain objects: requests from options and rows, responses to
the records of :mod:`client.results`. The server's conversions are in
:mod:`server.converters`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from client.results import (
    DeleteReply,
    MeasurementsReply,
    PhaseReply,
    PredictionReply,
    PredictorReply,
    PredictorsReply,
    RetrainReply,
)
from joulecast.carbon import GridIntensity, PhaseFootprint
from joulecast.errors import InvalidArgument
from joulecast.measurement import Row
from rpc.generated import estimator_pb2 as pb
from rpc.records import RowVerdict

_PREDICTOR_FIELDS = ("hardware", "version", "selected", "energy_source", "energy_is_estimate")
_FOOTPRINT_FIELDS = tuple(f.name for f in pb.PhaseFootprint.DESCRIPTOR.fields)


def predict_options(
    batch_size: int,
    samples: int,
    epochs: int,
    hardware: str | None,
    observed_gpu_util: float | None,
    region: str | None = None,
    price_per_kwh: float | None = None,
    power_limit_w: float | None = None,
    precision: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments shared by PredictEnergyRequest and PredictOptions (the counts must
    fit the proto's int64; the server checks their ranges)."""
    for name, value in (("batch_size", batch_size), ("samples", samples), ("epochs", epochs)):
        if not -(2**63) <= value < 2**63:
            raise InvalidArgument(f"{name} {value} is out of range")
    options: dict[str, Any] = {
        "batch_size": batch_size,
        "samples": samples,
        "epochs": epochs,
        "hardware": hardware or "",
    }
    if observed_gpu_util is not None:
        options["observed_gpu_util"] = observed_gpu_util
    if region is not None:
        options["region"] = region
    if price_per_kwh is not None:
        options["price_per_kwh"] = price_per_kwh
    if power_limit_w is not None:
        options["power_limit_w"] = power_limit_w
    if precision is not None:
        options["precision"] = precision
    return options


def predict_request(onnx_model: bytes, options: Mapping[str, Any]) -> pb.PredictEnergyRequest:
    return pb.PredictEnergyRequest(onnx_model=onnx_model, **options)


def predict_chunks(
    onnx_model: bytes, options: Mapping[str, Any], chunk_bytes: int
) -> Iterator[pb.PredictEnergyChunk]:
    yield pb.PredictEnergyChunk(options=pb.PredictOptions(**options), data=onnx_model[:chunk_bytes])
    for start in range(chunk_bytes, len(onnx_model), chunk_bytes):
        yield pb.PredictEnergyChunk(data=onnx_model[start : start + chunk_bytes])


def _phase(phase: pb.PhasePrediction) -> PhaseReply | None:
    if not phase.available:
        return None
    footprint = None
    if phase.HasField("footprint"):
        message = phase.footprint
        footprint = PhaseFootprint(
            **{
                name: getattr(message, name)
                for name in _FOOTPRINT_FIELDS
                if name.startswith("energy_") or message.HasField(name)
            }
        )
    return PhaseReply(
        energy_j=phase.energy_j,
        energy_low_j=phase.energy_low_j,
        energy_high_j=phase.energy_high_j,
        duration_s=phase.duration_s if phase.HasField("duration_s") else None,
        power_w=phase.power_w if phase.HasField("power_w") else None,
        predictor=phase.predictor,
        footprint=footprint,
    )


def prediction_from_response(response: pb.PredictEnergyResponse) -> PredictionReply:
    """An unavailable phase is ``None``, never a number; ``grid`` and ``price_per_kwh`` only
    when the request asked."""
    profile = response.profile
    grid = None
    if response.HasField("grid"):
        grid = GridIntensity(
            **{f.name: getattr(response.grid, f.name) for f in pb.GridIntensity.DESCRIPTOR.fields}
        )
    return PredictionReply(
        family=profile.family,
        family_reason=profile.family_reason,
        params=profile.params,
        flops_forward=profile.flops_forward,
        flops_train=profile.flops_train,
        flops_by_kind=dict(sorted(profile.flops_by_kind.items())),
        train=_phase(response.train),
        test=_phase(response.test),
        hardware=response.hardware,
        predictor_version=response.predictor_version,
        energy_source=response.energy_source,
        energy_is_estimate=response.energy_is_estimate,
        warnings=tuple(response.warnings),
        tier=response.tier or "measured",
        power_limit_w=response.power_limit_w if response.HasField("power_limit_w") else None,
        precision=response.precision if response.HasField("precision") else None,
        grid=grid,
        price_per_kwh=response.price_per_kwh if response.HasField("price_per_kwh") else None,
    )


def message_from_row(row: Row, graph: bytes | None) -> pb.MeasurementRow:
    """Client side: one stored row (and its graph, or ``None`` to name it by hash only)."""
    values = {k: v for k, v in dataclasses.asdict(row).items() if v is not None}
    if graph is not None:
        values["graph_onnx"] = graph
    return pb.MeasurementRow(**values)


def measurements_from_response(response: pb.AddMeasurementsResponse) -> MeasurementsReply:
    return MeasurementsReply(
        accepted=response.accepted,
        rejected=response.rejected,
        results=tuple(
            RowVerdict(index=r.index, run_key=r.run_key, accepted=r.accepted, reason=r.reason)
            for r in response.results
        ),
    )


def retrain_request(hardware: str, allow_idle_meter: bool = False) -> pb.RetrainRequest:
    return pb.RetrainRequest(hardware=hardware, allow_idle_meter=allow_idle_meter)


def delete_request(run_keys: list[str]) -> pb.DeleteMeasurementsRequest:
    return pb.DeleteMeasurementsRequest(run_keys=run_keys)


def list_predictors_request() -> pb.ListPredictorsRequest:
    return pb.ListPredictorsRequest()


def retrain_from_response(response: pb.RetrainResponse) -> RetrainReply:
    return RetrainReply(
        hardware=response.hardware,
        version=response.version,
        selected=response.selected,
        scores=json.loads(response.scores_json) if response.scores_json else None,
        energy_source=response.energy_source,
        energy_is_estimate=response.energy_is_estimate,
    )


def deleted_from_response(response: pb.DeleteMeasurementsResponse) -> DeleteReply:
    return DeleteReply(deleted=response.deleted, missing=tuple(response.missing))


def predictors_from_response(response: pb.ListPredictorsResponse) -> PredictorsReply:
    return PredictorsReply(
        default_hardware=response.default_hardware or None,
        predictors=tuple(
            PredictorReply(
                **{f: getattr(p, f) for f in _PREDICTOR_FIELDS},
                details=json.loads(p.details_json),
            )
            for p in response.predictors
        ),
    )
