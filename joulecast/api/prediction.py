"""What :meth:`joulecast.Estimator.predict` returns: frozen records of one prediction.

:meth:`Prediction.to_dict` is the JSON ``joulecast predict --json`` prints (less its
``uploaded_bytes``): the same keys, the same values, whether the answer came from a server or
from this process (docs/ARCHITECTURE.md, "The client's JSON").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from client.results import prediction_dict
from joulecast.answer_record import Answered, GraphSummary, PhaseEnergy
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    from client.results import PhaseReply, PredictionReply
    from joulecast.carbon import GridIntensity

_FOOTPRINT = (
    "energy_kwh",
    "energy_low_kwh",
    "energy_high_kwh",
    "co2_g",
    "co2_low_g",
    "co2_high_g",
    "cost",
    "cost_low",
    "cost_high",
)


@dataclass(frozen=True)
class PhaseEstimate(PhaseEnergy):
    """One phase (training: every epoch; testing: one pass), all its samples.

    ``energy_j`` (J) with its 90 % interval ``energy_low_j``..``energy_high_j``;
    ``energy_j`` = ``power_w`` (average W) × ``duration_s`` (wall time, s), both None only from
    a predictor that predicts no duration; ``predictor`` names the model that answered. The kWh,
    gCO2eq (with its interval) and cost (in the price's currency) are set only when the request
    named a region (gCO2eq) or a price per kWh (cost); kWh with either.
    """

    energy_kwh: float | None = None
    energy_low_kwh: float | None = None
    energy_high_kwh: float | None = None
    co2_g: float | None = None
    co2_low_g: float | None = None
    co2_high_g: float | None = None
    cost: float | None = None
    cost_low: float | None = None
    cost_high: float | None = None

    @property
    def interval_j(self) -> tuple[float, float]:
        """The 90 % interval of the energy, (low, high) in J."""
        return (self.energy_low_j, self.energy_high_j)

    def to_dict(self) -> dict[str, Any]:
        """The phase's JSON: carbon and cost keys only when the request asked for them."""
        out = dataclasses.asdict(self)
        for name in _FOOTPRINT:
            if out[name] is None:
                del out[name]
        return out

    @classmethod
    def from_reply(cls, reply: PhaseReply) -> PhaseEstimate:
        footprint = (
            {}
            if reply.footprint is None
            else {k: v for k, v in dataclasses.asdict(reply.footprint).items() if v is not None}
        )
        return cls(
            energy_j=reply.energy_j,
            energy_low_j=reply.energy_low_j,
            energy_high_j=reply.energy_high_j,
            duration_s=reply.duration_s,
            power_w=reply.power_w,
            predictor=reply.predictor,
            **footprint,
        )


@dataclass(frozen=True)
class Prediction(Answered[PhaseEstimate], GraphSummary):
    """Train and test energy of one graph on one hardware, with the graph's profile.

    ``train`` or ``test`` is None when the hardware has no data for that phase, or when its 90 %
    interval would span more than a factor 10; a warning says which. ``energy_is_estimate`` is
    True when the predictor learned from estimated energy, not from a power meter (its answers
    are estimates too, and so are their carbon and cost). ``tier`` says who answered:
    ``measured`` (a predictor fitted on that hardware's rows), ``calibrated`` (the transfer
    model fitted to a few rows of that GPU by ``joulecast calibrate``) or ``transferred`` (a
    catalogued GPU nobody measured, answered by the transfer model from its published figures);
    ``power_limit_w`` is the GPU power limit answered for, when one was asked; ``precision``
    what the matrix work runs in (``fp32``, ``amp-fp16``, ``amp-bf16``) when the transfer model
    answered. ``params`` and
    FLOPs (per sample, forward and training) come from the graph; ``grid`` and
    ``price_per_kwh`` only when the request named a region or a price.
    """

    tier: str = "measured"
    power_limit_w: float | None = None
    precision: str | None = None
    grid: GridIntensity | None = None
    price_per_kwh: float | None = None

    @property
    def phases(self) -> tuple[PhaseEstimate, ...]:
        """The phases answered (train, test; fewer when one is None)."""
        return tuple(p for p in (self.train, self.test) if p is not None)

    @property
    def co2_g(self) -> float | None:
        """gCO2eq of training and testing together (the phases answered); None without a
        region."""
        values = [p.co2_g for p in self.phases if p.co2_g is not None]
        return sum(values) if values else None

    @property
    def cost(self) -> float | None:
        """Cost of training and testing together (the phases answered), in the price's
        currency; None without a price per kWh."""
        values = [p.cost for p in self.phases if p.cost is not None]
        return sum(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``joulecast predict --json``, less ``uploaded_bytes``."""
        return prediction_dict(self, lambda phase: phase.to_dict())

    @classmethod
    def from_reply(cls, reply: PredictionReply) -> Prediction:
        """The record of the client's reply (:class:`client.results.PredictionReply`)."""
        return cls(
            family=reply.family,
            family_reason=reply.family_reason,
            params=reply.params,
            flops_forward=reply.flops_forward,
            flops_train=reply.flops_train,
            flops_by_kind=dict(reply.flops_by_kind),
            train=None if reply.train is None else PhaseEstimate.from_reply(reply.train),
            test=None if reply.test is None else PhaseEstimate.from_reply(reply.test),
            hardware=reply.hardware,
            predictor_version=reply.predictor_version,
            energy_source=reply.energy_source,
            energy_is_estimate=reply.energy_is_estimate,
            warnings=tuple(reply.warnings),
            tier=reply.tier,
            power_limit_w=reply.power_limit_w,
            precision=reply.precision,
            grid=reply.grid,
            price_per_kwh=reply.price_per_kwh,
        )

    def __str__(self) -> str:
        limit = "" if self.power_limit_w is None else f" at {self.power_limit_w:g} W"
        lines = [
            f"{self.family} graph, {self.params:,} parameters, on {self.hardware}{limit} "
            f"({'' if self.tier == 'measured' else self.tier + ' tier; '}"
            f"predictor {self.predictor_version}, energy source "
            f"{self.energy_source}{': ESTIMATED, not measured' if self.energy_is_estimate else ''})"
        ]
        for name in PHASES:
            phase: PhaseEstimate | None = getattr(self, name)
            if phase is None:
                lines.append(f"  {name:<5}  no answer (see warnings)")
                continue
            text = (
                f"  {name:<5}  {phase.energy_j:.4g} J  90 % [{phase.energy_low_j:.4g}, "
                f"{phase.energy_high_j:.4g}]"
            )
            if phase.duration_s is not None and phase.power_w is not None:
                text += f"  {phase.duration_s:.4g} s at {phase.power_w:.4g} W"
            if phase.co2_g is not None:
                text += f"  {phase.co2_g:.4g} gCO2eq"
            if phase.cost is not None:
                text += f"  cost {phase.cost:.4g}"
            lines.append(f"{text}  ({phase.predictor})")
        if self.warnings:
            lines.append(f"  {len(self.warnings)} warning(s): .warnings")
        return "\n".join(lines)
