"""The fields a prediction's records share, whichever layer holds them.

An answer is recorded three times on its way out: by the estimator
(:class:`estimator.answers.EnergyPrediction`), by the client from the reply
(:class:`client.results.PredictionReply`) and by the Python API
(:class:`joulecast.api.prediction.Prediction`); a graph's profile
(:class:`joulecast.graph.GraphProfile`) begins with what an answer says of its graph. Their
common fields are declared here once, in the order each record lists them (a dataclass puts its
bases' fields first, the last base's before the others). Standard library only: the client
imports this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

PhaseT = TypeVar("PhaseT")


@dataclass(frozen=True)
class GraphSummary:
    """A graph's family (and why), parameters and FLOPs per sample (forward, training, and
    forward by kind of operation)."""

    family: str
    family_reason: str
    params: int
    flops_forward: int
    flops_train: int
    flops_by_kind: Mapping[str, int]


@dataclass(frozen=True)
class PhaseEnergy:
    """One phase's energy (J) with its 90 % interval, wall time (s) and average power (W; both
    None from a predictor that predicts no duration), and the predictor that answered."""

    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float | None
    power_w: float | None
    predictor: str


@dataclass(frozen=True)
class Answered(Generic[PhaseT]):
    """The train and test answers (None: not answered; a warning says why), the hardware and
    predictor version that gave them, and whether their energy source is an estimate."""

    train: PhaseT | None
    test: PhaseT | None
    hardware: str
    predictor_version: str
    energy_source: str
    energy_is_estimate: bool
    warnings: tuple[str, ...]
