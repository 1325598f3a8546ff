"""Served answers from the transfer model: a catalogued GPU nobody measured, or a measured GPU
under another power limit than the one it was measured at.

A transferred answer says so in its tier and in a warning, with the interval its leave-one-GPU-
out and leave-one-workload-out errors earned. The test phase is not answered: every row the
model was fitted on is a training run, so a forward-only answer would rest on nothing measured.
"""

from __future__ import annotations

import math
from dataclasses import replace

from estimator.answers import EnergyPrediction, PhaseEstimate
from estimator.transfer import answer
from estimator.transfer.artifact import TransferModel
from estimator.transfer.gpu import GpuRates
from joulecast.graph import GraphProfile

PREDICTOR = "gpu-transfer"
SOURCE_JOINER = "+"


def energy_source(model: TransferModel) -> str:
    """The measured sources the model was fitted on, e.g. ``carbontracker-nvml+zeus-nvml-epoch``."""
    sources = sorted(model.fitted_on.get("energy_sources", {}))
    return SOURCE_JOINER.join(sources) or "unknown"


def _phase(est: answer.TransferEstimate) -> PhaseEstimate:
    return PhaseEstimate(
        energy_j=est.energy_j,
        energy_low_j=est.energy_low_j,
        energy_high_j=est.energy_high_j,
        duration_s=est.duration_s,
        predictor=PREDICTOR,
        power_w=est.power_w,
    )


def transferred(
    model: TransferModel,
    rates: GpuRates,
    name: str,
    profile: GraphProfile,
    *,
    batch_size: int,
    samples: int,
    epochs: int,
    power_limit_w: float | None,
) -> EnergyPrediction:
    """The answer for a catalogued GPU without a predictor of its own: transferred from its
    spec sheet, or, for a GPU among those the model was fitted on, measured through it."""
    fitted_gpus = list(model.fitted_on.get("gpus", []))
    measured = rates.id in fitted_gpus
    est = answer.estimate(
        model,
        rates,
        profile,
        batch_size=batch_size,
        samples=samples,
        epochs=epochs,
        power_limit_w=power_limit_w,
        gpu_measured=measured,
    )
    limit = answer.check_power_limit(rates, power_limit_w)
    if measured:
        first = (
            f"answered by the GPU transfer model, fitted on training runs of this GPU ({name}) "
            f"among {', '.join(fitted_gpus)}; the interval is its leave-one-workload-out error"
        )
    else:
        first = (
            f"transferred from the spec sheet; no measurement of this GPU ({name}): the transfer "
            f"model, fitted on training runs of {', '.join(fitted_gpus)}, reads its catalogued "
            "peak rates, bandwidth and power limit; the interval is its leave-one-GPU-out and "
            "leave-one-workload-out error"
        )
    warnings = [
        first,
        "no test prediction: the transfer model was fitted on training runs only",
        *profile.warnings,
    ]
    return EnergyPrediction(
        train=_phase(est),
        test=None,
        hardware=rates.id,
        predictor_version=model.version,
        energy_source=energy_source(model),
        energy_is_estimate=False,
        warnings=tuple(dict.fromkeys(warnings)),
        tier="measured" if measured else "transferred",
        power_limit_w=limit,
    )


def at_power_limit(
    measured: EnergyPrediction,
    model: TransferModel,
    rates: GpuRates,
    profile: GraphProfile,
    *,
    batch_size: int,
    samples: int,
    epochs: int,
    power_limit_w: float,
) -> EnergyPrediction:
    """A measured GPU's answer moved to another power limit: each phase scaled by the transfer
    model's ratio of that limit to the board's default (duration and power apart), the interval
    widened by the model's workload band."""
    limit = answer.check_power_limit(rates, power_limit_w)
    if limit == rates.power_limit_w:
        return replace(measured, power_limit_w=limit)
    scaled: dict[str, PhaseEstimate | None] = {}
    widened = False
    for phase in ("train", "test"):
        est = getattr(measured, phase)
        if est is None or est.duration_s is None or est.power_w is None:
            scaled[phase] = est
            continue
        kwargs = {"batch_size": batch_size, "samples": samples, "epochs": epochs}
        at = answer.estimate(
            model, rates, profile, power_limit_w=limit, phase=phase, gpu_measured=True, **kwargs
        )
        default = answer.estimate(
            model, rates, profile, power_limit_w=None, phase=phase, gpu_measured=True, **kwargs
        )
        time_ratio = at.duration_s / default.duration_s
        power = min(est.power_w * at.power_w / default.power_w, limit)
        duration = est.duration_s * time_ratio
        energy = power * duration
        # The limit's effect is the model's; where the limit does not bind there is none.
        low, high = answer.band(model, gpu_measured=True)
        binds = abs(math.log(at.energy_j / default.energy_j)) > 1e-6
        spread = math.exp((high - low) / 2) if binds else 1.0
        widened |= binds
        scale = energy / est.energy_j
        scaled[phase] = replace(
            est,
            energy_j=energy,
            energy_low_j=est.energy_low_j * scale / spread,
            energy_high_j=est.energy_high_j * scale * spread,
            duration_s=duration,
            power_w=power,
        )
    warning = (
        f"measured at the board's default power limit ({rates.power_limit_w:g} W); the effect of "
        f"{limit:g} W comes from the transfer model"
        + (" (interval widened)" if widened else ": this run's power stays under it (no change)")
    )
    return replace(
        measured,
        train=scaled["train"],
        test=scaled["test"],
        warnings=(*measured.warnings, warning),
        power_limit_w=limit,
    )
