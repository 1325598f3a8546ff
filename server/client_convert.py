"""Client side of protobuf <-> domain objects: requests from options and rows, and responses
to the JSON of docs/ARCHITECTURE.md. The server's conversions are in :mod:`server.converters`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from joulecast.errors import InvalidArgument
from joulecast.measurement import Row
from server.generated import estimator_pb2 as pb

_PHASE_FIELDS = ("energy_j", "energy_low_j", "energy_high_j", "duration_s")
_FOOTPRINT_FIELDS = tuple(f.name for f in pb.PhaseFootprint.DESCRIPTOR.fields)


def predict_options(
    batch_size: int,
    samples: int,
    epochs: int,
    hardware: str | None,
    observed_gpu_util: float | None,
    region: str | None = None,
    price_per_kwh: float | None = None,
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
    out["power_w"] = phase.power_w if phase.HasField("power_w") else None
    out["predictor"] = phase.predictor
    if phase.HasField("footprint"):
        footprint = phase.footprint
        for name in _FOOTPRINT_FIELDS:
            if name.startswith("energy_") or footprint.HasField(name):
                out[name] = getattr(footprint, name)
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
        **_grid_json(response),
    }


def _grid_json(response: pb.PredictEnergyResponse) -> dict[str, Any]:
    """``grid`` (the intensity used) and ``price_per_kwh``, only when the request asked."""
    out: dict[str, Any] = {}
    if response.HasField("grid"):
        grid = response.grid
        out["grid"] = {f.name: getattr(grid, f.name) for f in pb.GridIntensity.DESCRIPTOR.fields}
    if response.HasField("price_per_kwh"):
        out["price_per_kwh"] = response.price_per_kwh
    return out


def message_from_row(row: Row, graph: bytes | None) -> pb.MeasurementRow:
    """Client side: one stored row (and its graph, or ``None`` to name it by hash only)."""
    values = {k: v for k, v in dataclasses.asdict(row).items() if v is not None}
    if graph is not None:
        values["graph_onnx"] = graph
    return pb.MeasurementRow(**values)


def verdicts_to_json(response: pb.AddMeasurementsResponse) -> dict[str, Any]:
    return {
        "accepted": response.accepted,
        "rejected": response.rejected,
        "results": [
            {"index": r.index, "run_key": r.run_key, "accepted": r.accepted, "reason": r.reason}
            for r in response.results
        ],
    }


def retrain_to_json(response: pb.RetrainResponse) -> dict[str, Any]:
    return {
        "hardware": response.hardware,
        "version": response.version,
        "selected": response.selected,
        "scores": json.loads(response.scores_json) if response.scores_json else None,
    }


def predictors_to_json(response: pb.ListPredictorsResponse) -> dict[str, Any]:
    return {
        "default_hardware": response.default_hardware or None,
        "predictors": [json.loads(p.details_json) for p in response.predictors],
    }
