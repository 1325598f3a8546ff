"""What a prediction answers: per phase an energy with its interval, duration and power.

The records every answering path returns (measured predictors, the layer sum, the GPU transfer
model), so that the server converts one shape whichever path answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.answer_record import Answered

TIERS = ("measured", "calibrated", "transferred")
"""Where an answer's knowledge of the hardware comes from: a predictor fitted on rows of that
exact hardware, the transfer model fitted to a few rows of it (``joulecast calibrate``), or the
transfer model reading its spec sheet (no row of it)."""


@dataclass(frozen=True)
class PhaseEstimate:
    """Predicted energy of one phase (all samples, all epochs) in joules, with a 90 % interval.

    ``energy_j`` = ``power_w`` × ``duration_s``: the average power (W) the hardware is predicted
    to draw and the predicted wall time (s). Both are None only for a predictor version fitted
    before joulecast predicted them (no duration in its rows). ``predictor`` names the predictor
    that answered.
    """

    energy_j: float
    energy_low_j: float
    energy_high_j: float
    duration_s: float | None
    predictor: str
    power_w: float | None = None


@dataclass(frozen=True)
class EnergyPrediction(Answered[PhaseEstimate]):
    """Train and test estimates of one model on one hardware (None: no data for that phase, or
    an answer too uncertain to give; a warning says which)."""

    refused: tuple[str, ...] = ()
    """Phases the hardware has data for but that were not answered: their 90 % interval would
    be wider than the service's limit (a warning says why)."""
    tier: str = "measured"
    """One of :data:`TIERS`."""
    power_limit_w: float | None = None
    """The GPU power limit the answer is for (None: the board's default, or not a GPU)."""
    precision: str | None = None
    """What the answer's matrix work runs in (``fp32``, ``tf32``, ``amp-fp16``, ``amp-bf16``),
    when the GPU transfer model answered; None: a measured predictor, whose rows ran as they were
    measured (the collector's in FP32)."""
