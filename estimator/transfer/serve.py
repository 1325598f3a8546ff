"""Served answers from the transfer model: a catalogued GPU nobody measured, a GPU calibrated by
a few rows of its own (``joulecast calibrate``), or a measured GPU under another power limit than
the one it was measured at.

A transferred answer says so in its tier and in a warning, with the interval its leave-one-GPU-
out and leave-one-workload-out errors earned. The test phase is not answered: every row the
model was fitted on is a training run, so a forward-only answer would rest on nothing measured.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from estimator.answers import EnergyPrediction, PhaseEstimate
from estimator.transfer import answer
from estimator.transfer.answer import RunCounts
from estimator.transfer.artifact import TransferModel
from estimator.transfer.gpu import GpuRates
from joulecast.graph import GraphProfile
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    from estimator.transfer.calibrated import CalibratedModel

PREDICTOR = "gpu-transfer"
CALIBRATED_PREDICTOR = "gpu-transfer-calibrated"
SOURCE_JOINER = "+"


def energy_source(model: TransferModel) -> str:
    """The measured sources the model was fitted on, e.g. ``carbontracker-nvml+zeus-nvml-epoch``."""
    sources = sorted(model.fitted_on.get("energy_sources", {}))
    return SOURCE_JOINER.join(sources) or "unknown"


def _phase(est: answer.TransferEstimate, predictor: str = PREDICTOR) -> PhaseEstimate:
    return PhaseEstimate(
        energy_j=est.energy_j,
        energy_low_j=est.energy_low_j,
        energy_high_j=est.energy_high_j,
        duration_s=est.duration_s,
        predictor=predictor,
        power_w=est.power_w,
    )


def transferred(
    model: TransferModel,
    rates: GpuRates,
    name: str,
    profile: GraphProfile,
    run: RunCounts,
    *,
    power_limit_w: float | None,
) -> EnergyPrediction:
    """The answer for a catalogued GPU without a predictor of its own: transferred from its
    spec sheet, or, for a GPU among those the model was fitted on, measured through it."""
    fitted_gpus = list(model.fitted_on.get("gpus", []))
    measured = rates.id in fitted_gpus
    log_band = answer.band(model, gpu_measured=measured)
    est = answer.estimate_with(
        model.params, log_band, rates, profile, run, power_limit_w=power_limit_w
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
        answer.precision_warning(run, model.params),
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
        precision=run.precision,
    )


def calibrated(
    model: CalibratedModel,
    rates: GpuRates,
    name: str,
    profile: GraphProfile,
    run: RunCounts,
    *,
    power_limit_w: float | None,
    max_factor: float,
) -> EnergyPrediction:
    """The answer for a GPU calibrated on a few rows of its own: the transfer model's equations
    with the calibrated parameters, each phase the calibration has a band for. A test answer
    whose interval would span more than ``max_factor`` (high/low) is refused, as a measured
    predictor's is (the transfer model never answers testing); a training answer never is, as
    the transferred one is not, but a warning says its interval is wide."""
    limit = answer.check_power_limit(rates, power_limit_w)
    info = model.calibration
    configs = info.get("configurations", [])
    warnings = [
        f"calibrated on this GPU ({name}): the transfer model fitted to {model.rows} rows of "
        f"{len(configs)} configurations measured {model.measured}, prior transfer model "
        f"{info.get('prior', {}).get('version', '?')}; the interval combines the calibration's "
        "leave-one-configuration-out error with the transfer model's leave-one-workload-out band",
        answer.precision_warning(run, model.params),
    ]
    if model.replayed_rows:
        warnings.insert(
            0,
            f"NOT A MEASUREMENT: {model.replayed_rows} of the calibration's {model.rows} rows were "
            "metered by a replayed trace (--meter replay), a recording of other work played "
            "back to test the code path; no GPU was measured",
        )
    if not info.get("held_out"):
        warnings.append(
            f"the calibration spans {len(configs)} configuration(s): nothing could be held out, "
            "so the parameters stay near the transfer model's and the interval is the "
            "transferred one"
        )
    phases: dict[str, PhaseEstimate | None] = {}
    refused: list[str] = []
    for phase in PHASES:
        band = model.bands.get(phase)
        if band is None:
            warnings.append(f"no {phase} prediction: the calibration holds no {phase} rows")
            phases[phase] = None
            continue
        factor = math.exp(band[1] - band[0])
        if factor > max_factor and phase == "test":
            warnings.append(
                f"{phase}: no answer: its 90 % interval would span a factor {factor:.0f} (more "
                f"than {max_factor:g}); the calibration's held-out {phase} rows strayed too far"
            )
            phases[phase] = None
            refused.append(phase)
            continue
        if factor > max_factor:
            # Training is answered whatever its width, as the transferred tier it refines is:
            # a calibration that stops answering would be worse than none.
            warnings.append(
                f"{phase}: a wide interval (a factor {factor:.0f}): a configuration the "
                "calibration held out strayed far from the others' answer, as a network of a "
                "kind its suite lacks may"
            )
        est = answer.estimate_with(
            model.params, band, rates, profile, run, power_limit_w=limit, phase=phase
        )
        phases[phase] = _phase(est, CALIBRATED_PREDICTOR)
    if phases.get("test") is not None:
        warnings.append(
            "test: the same equations' forward pass (the calibration fits training rows only); "
            "its interval comes from the suite's held-out test rows"
        )
    sources = sorted(info.get("energy_sources", {})) or ["unknown"]
    return EnergyPrediction(
        train=phases["train"],
        test=phases["test"],
        hardware=model.hardware,
        predictor_version=model.version,
        energy_source=SOURCE_JOINER.join(sources),
        energy_is_estimate=False,
        warnings=tuple(dict.fromkeys([*warnings, *profile.warnings])),
        refused=tuple(refused),
        tier="calibrated",
        power_limit_w=limit,
        precision=run.precision,
    )


def at_power_limit(
    measured: EnergyPrediction,
    model: TransferModel,
    rates: GpuRates,
    profile: GraphProfile,
    run: RunCounts,
    *,
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
    log_band = answer.band(model, gpu_measured=True)
    for phase in PHASES:
        est = getattr(measured, phase)
        if est is None or est.duration_s is None or est.power_w is None:
            scaled[phase] = est
            continue
        at = answer.estimate_with(
            model.params, log_band, rates, profile, run, power_limit_w=limit, phase=phase
        )
        default = answer.estimate_with(model.params, log_band, rates, profile, run, phase=phase)
        time_ratio = at.duration_s / default.duration_s
        power = min(est.power_w * at.power_w / default.power_w, limit)
        duration = est.duration_s * time_ratio
        energy = power * duration
        # The limit's effect is the model's; where the limit does not bind there is none.
        low, high = log_band
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
