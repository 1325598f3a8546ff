"""What the client gets back from each call: frozen records, not dicts.

Each record's :meth:`as_dict` is the JSON the CLI prints (``--json``; the layout of
docs/ARCHITECTURE.md), so a script reading the CLI and a program using
:class:`client.remote.EstimatorClient` see the same fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joulecast.answer_record import Answered, GraphSummary, PhaseEnergy
from joulecast.carbon import GridIntensity, PhaseFootprint
from joulecast.measurement import PHASES
from rpc.records import RowVerdict


@dataclass(frozen=True)
class PhaseReply(PhaseEnergy):
    """One phase's answer: energy (J) with its 90 % interval, wall time (s), average power (W;
    None from a predictor that predicts no duration), and the kWh, gCO2eq and cost when the
    request asked for them."""

    footprint: PhaseFootprint | None = None

    def as_dict(self) -> dict[str, Any]:
        """Footprint fields sit beside the energy, each only when the server sent it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del out["footprint"]
        if self.footprint is not None:
            out.update(
                (k, v) for k, v in dataclasses.asdict(self.footprint).items() if v is not None
            )
        return out


@dataclass(frozen=True)
class PredictionReply(Answered[PhaseReply], GraphSummary):
    """The graph's profile and its train and test answers (None: unavailable, never a number).

    ``energy_is_estimate`` is True when the predictor learned from estimated energy, not from a
    power meter; ``grid`` and ``price_per_kwh`` only when the request named a region or price.
    """

    tier: str = "measured"
    """``measured`` (a predictor fitted on rows of that hardware) or ``transferred`` (the GPU
    transfer model reading its spec sheet)."""
    power_limit_w: float | None = None
    precision: str | None = None
    """What the answer's matrix work runs in, when the GPU transfer model answered."""
    grid: GridIntensity | None = None
    price_per_kwh: float | None = None

    def phase(self, name: str) -> PhaseReply | None:
        """``train`` or ``test``."""
        return {"train": self.train, "test": self.test}[name]

    def as_dict(self) -> dict[str, Any]:
        return prediction_dict(self, lambda answer: answer.as_dict())


def prediction_dict(record: Any, phase_dict: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The JSON of a prediction record (:class:`PredictionReply`, or the API's ``Prediction``,
    which has the same fields): its fields, each phase through ``phase_dict``, and ``grid`` and
    ``price_per_kwh`` only when the request named a region or a price."""
    out = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    out["flops_by_kind"] = dict(record.flops_by_kind)
    out["warnings"] = list(record.warnings)
    for phase in PHASES:
        answer = out[phase]
        out[phase] = None if answer is None else phase_dict(answer)
    if record.grid is None:
        del out["grid"]
    else:
        out["grid"] = dataclasses.asdict(record.grid)
    if record.price_per_kwh is None:
        del out["price_per_kwh"]
    return out


@dataclass(frozen=True)
class MeasurementsReply:
    """AddMeasurements: how many rows were committed and rejected, and each row's verdict."""

    accepted: int
    rejected: int
    results: tuple[RowVerdict, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "results": [dataclasses.asdict(r) for r in self.results],
        }


@dataclass(frozen=True)
class RetrainReply:
    """Retrain: the version now serving, its selection (``train=..., test=...``) and CV scores;
    ``version`` empty when the hardware is no longer served (``selected`` says why)."""

    hardware: str
    version: str
    selected: str
    scores: Any
    energy_source: str = ""
    energy_is_estimate: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class DeleteReply:
    """DeleteMeasurements: how many rows went, and the run keys that were not stored."""

    deleted: int
    missing: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"deleted": self.deleted, "missing": list(self.missing)}


@dataclass(frozen=True)
class PredictorReply:
    """One served predictor; ``details`` is the server's full description of it (JSON)."""

    hardware: str
    version: str
    selected: str
    energy_source: str
    energy_is_estimate: bool
    details: Mapping[str, Any]


@dataclass(frozen=True)
class PredictorsReply:
    """ListPredictors: the predictors served and the hardware answered when none is named."""

    default_hardware: str | None
    predictors: tuple[PredictorReply, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "default_hardware": self.default_hardware,
            "predictors": [dict(p.details) for p in self.predictors],
        }
