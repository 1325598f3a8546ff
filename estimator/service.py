"""The estimator's Python API for the server: load published predictors and predict.

Transport-agnostic: the gRPC servicer converts messages to a :class:`GraphProfile` and run
counts, calls :meth:`PredictorRegistry.predict`, and converts the :class:`EnergyPrediction` back.
Fitting and publishing live in :mod:`estimator.publish`, which stands on this module (through
the canary) and never the other way round: serving imports nothing that fits.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from estimator.answers import EnergyPrediction, PhaseEstimate
from estimator.artifacts import Published, list_hardware, load_current
from estimator.description import (
    PredictorDescription,
    describe_calibration,
    describe_published,
)
from estimator.domain import WIDEN as DOMAIN_WIDEN
from estimator.domain import outside
from estimator.evaluation import OBSERVED_VARIANT
from estimator.features import ServeRow, run_features, serve_rows
from estimator.intervals import interval
from estimator.predictors import PhysicalPredictor, Predictor, UtilisationAware, family_key
from estimator.predictors.physical import MIN_TRAIN_OVER_TEST
from estimator.training import Bundle
from estimator.transfer import artifact, calibrated, serve
from estimator.transfer.answer import RunCounts, check_precision, tf32_as_fp32_warning
from estimator.transfer.gpu import GpuRates
from joulecast.errors import FailedPrecondition, InvalidArgument, JoulecastError, NotFound
from joulecast.graph import GraphLimits, GraphProfile, profile_nodes
from joulecast.hardware import AmbiguousGpuName, find_gpu
from joulecast.measurement import PHASES
from joulecast.store import MeasurementStore

if TYPE_CHECKING:
    from estimator.layerwise import LayerAnswer, LayerSum
    from estimator.transfer.artifact import TransferModel
    from estimator.transfer.calibrated import CalibratedModel
    from joulecast.hardware import GpuSpec

logger = logging.getLogger(__name__)

LayerAnswerFn = Callable[["LayerSum", int], "LayerAnswer"]
"""``(layer-sum model, batch size) -> LayerAnswer`` of one forward pass of the graph asked about."""


MAX_INTERVAL_FACTOR = 10.0
"""An answer whose 90 % interval is wider than this (high/low) is refused: phase null."""
WIDEN_LOG = {
    "batch_size": math.log(1.5),
    "samples": math.log(1.2),
    "flops": math.log(1.25),
}
"""Extra log half-width added to the interval when the request lies outside the data. Sample
counts widen only below the data: energy is modelled per sample, and a longer run only dilutes
the fixed start-up cost that makes a short one cost more per sample."""


MAX_BATCH = 1 << 20
MAX_SAMPLES = 10**12
MAX_EPOCHS = 1 << 20


def check_counts(
    batch_size: int, samples: int, epochs: int, observed_gpu_util: float | None = None
) -> None:
    """The one check of a request's run counts (the server's PredictQuery calls it too):
    integers within what a run can have, a utilisation in percent; InvalidArgument names the
    first bad field."""
    for name, value, top in (
        ("batch_size", batch_size, MAX_BATCH),
        ("samples", samples, MAX_SAMPLES),
        ("epochs", epochs, MAX_EPOCHS),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidArgument(f"{name} must be an integer in [1, {top}], got {value!r}")
    util = observed_gpu_util
    if util is not None and not (
        isinstance(util, int | float)
        and not isinstance(util, bool)
        and math.isfinite(util)
        and 0.0 <= util <= 100.0
    ):
        raise InvalidArgument(f"observed_gpu_util must be a percentage in [0, 100], got {util!r}")


def estimate(
    published: Published,
    profile: GraphProfile,
    *,
    batch_size: int,
    samples: int,
    epochs: int,
    observed_gpu_util: float | None = None,
    layer_answer: LayerAnswerFn | None = None,
) -> EnergyPrediction:
    """Predict with one loaded predictor version (see :meth:`PredictorRegistry.predict`).

    ``layer_answer(model, batch_size)`` gives one forward pass of the graph by a layer-sum
    model (:meth:`estimator.layerwise.LayerSum.predict_nodes` on the graph's per-node records:
    :func:`in_process_layer_answer`, or the server's worker pool); it is called only when the
    hardware's bundle holds a layer-sum model, which then answers the test phase (the
    hardware's data is per layer: only a sum over nodes can predict a network).

    Every answer obeys: energy = power × duration; power within the range the hardware drew in
    the training rows; train energy and duration ≥ test's for the same samples.
    """
    check_counts(batch_size, samples, epochs, observed_gpu_util)
    bundle = published.bundle
    warnings: list[str] = []
    if bundle.energy_is_estimate:
        warnings.append(
            f"energy is ESTIMATED, not measured: the predictor of {bundle.hardware} was trained "
            f"on {bundle.energy_source} energy"
        )
    warnings.extend(profile.warnings)
    features = run_features(
        profile, phase="train", batch_size=batch_size, samples=samples, epochs=epochs
    )
    rows = serve_rows(features, tuple(p for p in PHASES if p in bundle.phases))
    # Input shapes outside the data (batch size, samples and FLOPs: _outside_data below).
    extrapolations = outside(bundle.domain, features, batch_size=False)
    warnings.extend(
        f"out of the measured domain of {bundle.hardware}: {why}; the interval is widened"
        for why in extrapolations
    )
    count = float(samples) * float(epochs)
    widen = _outside_data(bundle, rows, batch_size, samples, warnings)
    widen = {p: v + len(extrapolations) * math.log(DOMAIN_WIDEN) for p, v in widen.items()}
    answers: dict[str, PhaseEstimate | None] = {}
    for phase in PHASES:
        if phase not in bundle.phases:
            warnings.append(
                f"no {phase} measurements for hardware {bundle.hardware}; no {phase} prediction"
            )
            answers[phase] = None
            continue
        if phase == "test" and bundle.layer_sum is not None and layer_answer is not None:
            found = layer_answer(bundle.layer_sum, batch_size)
            answers[phase] = _layer_sum_phase(bundle, found, batch_size, count, warnings)
            continue
        answers[phase] = _phase(
            bundle, rows[phase], count, observed_gpu_util, widen[phase], warnings
        )
    train, test = _tie(answers["train"], answers["test"])
    return EnergyPrediction(
        train=train,
        test=test,
        hardware=bundle.hardware,
        predictor_version=published.version,
        energy_source=bundle.energy_source,
        energy_is_estimate=bundle.energy_is_estimate,
        warnings=tuple(dict.fromkeys(warnings)),
        refused=tuple(p for p in bundle.phases if p in answers and answers[p] is None),
    )


def in_process_layer_answer(onnx_bytes: bytes, limits: GraphLimits | None = None) -> LayerAnswerFn:
    """``layer_answer`` for :func:`estimate` computed in this process (the server computes it
    in its bounded worker pool instead)."""

    def answer(model: LayerSum, batch_size: int) -> LayerAnswer:
        return model.predict_nodes(profile_nodes(onnx_bytes, limits), batch_size)

    return answer


def _layer_sum_phase(
    bundle: Bundle,
    answer: LayerAnswer,
    batch_size: int,
    count: float,
    warnings: list[str],
) -> PhaseEstimate:
    """The test phase as ``count / batch_size`` forward passes, each the sum of its nodes."""
    warnings.extend(answer.warnings)
    passes = count / batch_size
    if not (math.isfinite(answer.energy_j) and answer.energy_j > 0):
        raise FailedPrecondition("layer-sum produced no test prediction for this graph")
    return PhaseEstimate(
        answer.energy_j * passes,
        answer.low_j * passes,
        answer.high_j * passes,
        answer.duration_s * passes,
        bundle.layer_sum.name,
        power_w=answer.energy_j / answer.duration_s,
    )


def _outside_data(
    bundle: Bundle,
    rows: dict[str, ServeRow],
    batch_size: int,
    samples: int,
    warnings: list[str],
) -> dict[str, float]:
    """Per phase, the extra interval half-width for a request outside the training rows."""
    domain = bundle.domain
    extra = {phase: 0.0 for phase in rows}
    batch = domain.get("batch_size")
    if batch and not batch[0] <= batch_size <= batch[1]:  # type: ignore[index]
        warnings.append(
            f"batch size {batch_size} is outside the measured {batch[0]}..{batch[1]}; "  # type: ignore[index]
            "the answer ignores batch size effects (interval widened)"
        )
        extra = {p: v + WIDEN_LOG["batch_size"] for p, v in extra.items()}
    counts = domain.get("samples")
    if counts and samples < counts[0]:  # type: ignore[index]
        warnings.append(
            f"{samples} samples is below the measured {counts[0]}..{counts[1]}: fixed "  # type: ignore[index]
            "start-up costs weigh more in a short run than per-sample scaling says "
            "(interval widened)"
        )
        extra = {p: v + WIDEN_LOG["samples"] for p, v in extra.items()}
    elif counts and samples > counts[1]:  # type: ignore[index]
        warnings.append(
            f"{samples} samples is above the measured {counts[0]}..{counts[1]}: energy is "  # type: ignore[index]
            "scaled per sample (longer runs only dilute fixed costs; see the dataset-size "
            "check)"
        )
    flops = domain.get("flops") or {}
    for phase, row in rows.items():
        key = family_key(row.family, float(row.features["recurrent_steps"]))  # type: ignore[arg-type]
        span = flops.get(phase, {}).get(key)  # type: ignore[union-attr]
        if span and not span[0] <= row.flops <= span[1]:
            warnings.append(
                f"{phase}: {row.flops:.3g} FLOPs per sample is outside the measured "
                f"{span[0]:.3g}..{span[1]:.3g} of {key} (extrapolated; interval widened)"
            )
            extra[phase] += WIDEN_LOG["flops"]
    return extra


def _phase(
    bundle: Bundle,
    row: ServeRow,
    count: float,
    observed_util: float | None,
    widen: float,
    warnings: list[str],
) -> PhaseEstimate | None:
    """One phase's estimate from numpy rows (no pandas); None when refused as too uncertain."""
    phase = row.phase
    family = row.family
    name = bundle.selected[phase]
    q = bundle.q_log[phase].get(name, math.log(2.0))
    util_model = bundle.duration_model
    if family not in bundle.families.get(phase, ()):
        name = bundle.fallback[phase]
        q = bundle.q_log_unseen[phase]
        warnings.append(
            f"family {family!r} is not in the {phase} data of {bundle.hardware} "
            f"(seen: {', '.join(bundle.families.get(phase, ()))}); answered by the family-free "
            f"predictor {name} with a wider interval"
        )
    if observed_util is not None:
        if util_model is not None and util_model.uses_util_:
            name = UtilisationAware.name
            q = bundle.q_log[phase].get(OBSERVED_VARIANT, bundle.q_log[phase].get(name, q))
            row = row.with_observed_util(float(observed_util))
            warnings.append(
                f"{phase}: answered by utilisation-aware with the observed GPU utilisation "
                f"{observed_util:g} %"
            )
        else:
            warnings.append(
                "observed GPU utilisation ignored: this predictor has no GPU utilisation"
            )
    if name == UtilisationAware.name and util_model is not None and not util_model.uses_util_:
        warnings.extend(util_model.notes)
    q += widen
    factor = math.exp(2 * q)
    if factor > MAX_INTERVAL_FACTOR:
        warnings.append(
            f"{phase}: no answer: its 90 % interval would span a factor {factor:.0f} "
            f"(more than {MAX_INTERVAL_FACTOR:g}); measure models like this one on "
            f"{bundle.hardware} first"
        )
        return None
    predictor = bundle.predictors[name]
    predictor.check_row(row)
    power, per_sample_s = _power_duration(predictor, util_model, row)
    if not (math.isfinite(power) and power > 0 and math.isfinite(per_sample_s)):
        raise FailedPrecondition(f"{name} produced no {phase} prediction for this graph")
    duration = per_sample_s * count
    energy = power * duration
    low, high = interval(energy, q)
    return PhaseEstimate(energy, low, high, duration, name, power)


def _power_duration(
    predictor: Predictor, util_model: UtilisationAware | None, row: ServeRow
) -> tuple[float, float]:
    """(power W, duration per sample per epoch s) of one row.

    Physical predictors give both; an older, energy-only predictor gets its power from the
    utilisation-aware model (the mean power the hardware drew in the training rows, or its line
    on utilisation) and its duration as energy / power: dividing its energy by another model's
    duration instead gave powers no hardware draws (a 623 W Quadro RTX 6000, a 260 W card).
    """
    if isinstance(predictor, PhysicalPredictor):
        return predictor.predict_parts_row(row)
    if util_model is not None:
        per_sample, seconds = util_model.predict_row_and_duration(row)
        power = per_sample / seconds
        if predictor is util_model:
            return power, seconds
        return power, predictor.predict_row(row) / power
    raise FailedPrecondition(f"{predictor.name} predicts no duration; refit the predictor")


def _calibrated(
    calibration: CalibratedModel,
    spec: GpuSpec | None,
    profile: GraphProfile,
    power_limit_w: float | None,
    run: RunCounts,
) -> EnergyPrediction:
    """The answer of a GPU's calibrated transfer model."""
    if spec is None:
        raise FailedPrecondition(
            f"the calibration of {calibration.hardware} names GPU {calibration.gpu!r}, "
            "which the catalog no longer holds"
        )
    answer = serve.calibrated(
        calibration,
        GpuRates.from_spec(spec),
        spec.name,
        profile,
        run,
        power_limit_w=power_limit_w,
        max_factor=MAX_INTERVAL_FACTOR,
    )
    return _tied(answer)


def _tied(answer: EnergyPrediction) -> EnergyPrediction:
    """``answer`` with training kept dearer than testing (:func:`_tie`)."""
    train, test = _tie(answer.train, answer.test)
    return replace(answer, train=train, test=test)


def _tie(
    train: PhaseEstimate | None, test: PhaseEstimate | None
) -> tuple[PhaseEstimate | None, PhaseEstimate | None]:
    """Training the samples costs more (energy, time) than testing them: where two different
    predictors answered, raise train's duration (and so its energy) to the floor every
    physical predictor keeps, :data:`MIN_TRAIN_OVER_TEST` times test's (a training step runs
    the forward pass and a backward pass)."""
    if train is None or test is None or train.duration_s is None or test.duration_s is None:
        return train, test
    floor_j = MIN_TRAIN_OVER_TEST * test.energy_j
    floor_s = MIN_TRAIN_OVER_TEST * test.duration_s
    if train.energy_j >= floor_j and train.duration_s >= floor_s:
        return train, test
    power = train.power_w if train.power_w is not None else test.power_w
    assert power is not None
    duration = max(train.duration_s, floor_s, floor_j / power)
    energy = power * duration
    scale = energy / train.energy_j
    return (
        replace(
            train,
            energy_j=energy,
            energy_low_j=train.energy_low_j * scale,
            energy_high_j=train.energy_high_j * scale,
            duration_s=duration,
            power_w=power,
        ),
        test,
    )


def _catalogued(hardware: str | None) -> GpuSpec | None:
    """The catalog's GPU for a hardware id or name; None for other hardware (CPUs, replay)."""
    if hardware is None:
        return None
    try:
        return find_gpu(hardware)
    except AmbiguousGpuName as exc:
        raise InvalidArgument(str(exc)) from exc


def _load_transfer(artifacts_dir: Path) -> TransferModel | None:
    try:
        return artifact.load(artifacts_dir)
    except JoulecastError as exc:
        # A broken transfer model must not stop the measured predictors from serving.
        logger.error("transfer model not loaded: %s", exc)
        return None


def _load_calibrations(artifacts_dir: Path) -> dict[str, CalibratedModel]:
    """Every calibrated GPU under ``artifacts_dir/transfer/calibrated``, by hardware id."""
    out: dict[str, CalibratedModel] = {}
    for hardware in calibrated.list_calibrated(artifacts_dir):
        try:
            model = calibrated.load(artifacts_dir, hardware)
        except JoulecastError as exc:
            # One broken calibration must not stop the others, or anything else, from serving.
            logger.error("calibration of %s not loaded: %s", hardware, exc)
            continue
        if model is not None:
            out[hardware] = model
    return out


class PredictorRegistry:
    """The CURRENT predictor version of every hardware under ``artifacts_dir/predictors``, the
    GPU transfer model and the GPUs calibrated on it (``artifacts_dir/transfer/calibrated``).

    Thread-safe: :meth:`reload` loads a new version fully, then swaps it in under a lock, so
    :meth:`predict` keeps answering with the old version meanwhile.
    """

    def __init__(self, artifacts_dir: Path) -> None:
        self._dir = Path(artifacts_dir)
        self._lock = threading.Lock()
        self._loaded: dict[str, Published] = {}
        self._errors: dict[str, str] = {}
        for hardware in list_hardware(self._dir):
            try:
                self._loaded[hardware] = load_current(self._dir, hardware)
            except (JoulecastError, RecursionError, OSError, ValueError, MemoryError) as exc:
                # One broken predictor must not stop the others from serving.
                logger.error("predictor of %s not loaded: %s", hardware, exc)
                self._errors[hardware] = str(exc)
        self._transfer = _load_transfer(self._dir)
        self._calibrated = _load_calibrations(self._dir)

    def hardware(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)

    @property
    def default_hardware(self) -> str:
        """The only hardware, or the first in name order; FailedPrecondition when none."""
        names = self.hardware()
        if not names:
            raise FailedPrecondition(f"no predictor is published under {self._dir}/predictors")
        return names[0]

    def _get(self, hardware: str | None) -> Published:
        with self._lock:
            loaded = dict(self._loaded)
        if hardware is None and not loaded:
            raise FailedPrecondition(
                f"no predictor is published under {self._dir}/predictors; run `joulecast fit`"
            )
        if hardware is None:
            return loaded[sorted(loaded)[0]]
        if hardware not in loaded:
            raise NotFound(f"no predictor for hardware {hardware!r}; available: {sorted(loaded)}")
        return loaded[hardware]

    def uses_layer_sum(self) -> bool:
        """True when some hardware is answered by a layer-sum model (its workers will need
        xgboost and the model's code)."""
        with self._lock:
            return any(p.bundle.layer_sum is not None for p in self._loaded.values())

    def _resolve(
        self, hardware: str | None
    ) -> tuple[Published | None, CalibratedModel | None, GpuSpec | None]:
        """Who answers for ``hardware``: its measured predictor (by id, or by any name the GPU
        catalog knows it by); else its calibration (by id, or the catalog id of the GPU named);
        else, for a catalogued GPU, the transfer model. Returns (predictor, calibration, the
        GPU's figures); NotFound when none knows it."""
        with self._lock:
            loaded = dict(self._loaded)
            calibrations = dict(self._calibrated)
        if hardware is None or hardware in loaded:
            return self._get(hardware), None, _catalogued(hardware)
        if hardware in calibrations:
            model = calibrations[hardware]
            return None, model, _catalogued(model.gpu)
        spec = _catalogued(hardware)
        if spec is not None and spec.id in loaded:
            return loaded[spec.id], None, spec
        if spec is not None and spec.id in calibrations:
            return None, calibrations[spec.id], spec
        if spec is not None and self._transfer is not None:
            return None, None, spec
        known = "" if self._transfer is None else "; or a GPU of `joulecast hardware`"
        raise NotFound(
            f"no predictor for hardware {hardware!r}; available: {sorted(loaded)}{known}"
        )

    def serving(self, hardware: str | None = None) -> object:
        """The loaded version that answers for ``hardware`` (None: the default hardware), its
        calibration, or the transfer model for a catalogued GPU without either.

        The same object until :meth:`reload` swaps in another, so that a caller may keep
        answers computed with it (the server's answer cache) and know when they are stale."""
        published, calibration, _ = self._resolve(hardware)
        if published is not None:
            return published
        return calibration if calibration is not None else self._transfer

    @property
    def transfer(self) -> TransferModel | None:
        """The published GPU transfer model, if any."""
        return self._transfer

    def predict(
        self,
        profile: GraphProfile,
        *,
        batch_size: int,
        samples: int,
        epochs: int,
        hardware: str | None = None,
        observed_gpu_util: float | None = None,
        layer_answer: LayerAnswerFn | None = None,
        power_limit_w: float | None = None,
        precision: str | None = None,
    ) -> EnergyPrediction:
        """Train and test energy (J) of ``samples`` samples for ``epochs`` epochs.

        ``layer_answer``: one forward pass by a layer-sum model, asked for only by a layer-sum
        hardware (see :func:`estimate`).
        ``power_limit_w``: a GPU's power limit (None: the board's default); a measured GPU
        answers at another limit through the transfer model's ratio.
        ``precision``: ``fp32`` (None), ``tf32``, ``amp-fp16`` or ``amp-bf16``; TF32 (on a GPU
        that has it) and mixed precision are answered by the GPU transfer model (transferred or
        calibrated), training only for a GPU with a measured predictor (whose rows ran in
        FP32). TF32 on a GPU without it is answered as FP32, with a warning saying so."""
        answer = self._predict(
            profile,
            batch_size=batch_size,
            samples=samples,
            epochs=epochs,
            hardware=hardware,
            observed_gpu_util=observed_gpu_util,
            layer_answer=layer_answer,
            power_limit_w=power_limit_w,
            precision=precision,
        )
        if precision == "tf32" and answer.precision in (None, "fp32"):
            gpu = answer.hardware or hardware or ""
            return replace(answer, warnings=(tf32_as_fp32_warning(gpu), *answer.warnings))
        return answer

    def _predict(
        self,
        profile: GraphProfile,
        *,
        batch_size: int,
        samples: int,
        epochs: int,
        hardware: str | None,
        observed_gpu_util: float | None,
        layer_answer: LayerAnswerFn | None,
        power_limit_w: float | None,
        precision: str | None,
    ) -> EnergyPrediction:
        check_counts(batch_size, samples, epochs, observed_gpu_util)
        published, calibration, spec = self._resolve(hardware)
        if precision not in (None, "fp32") and (spec is None or self._transfer is None):
            name = published.bundle.hardware if published is not None else hardware
            raise InvalidArgument(
                f"precision {precision} is answered by the GPU transfer model for a catalogued "
                f"GPU; {name} is not one, or no transfer model is published"
            )
        run = RunCounts(
            batch_size,
            samples,
            epochs,
            check_precision(
                precision,
                spec.tensor_bf16_tflops if spec else None,
                hardware or "",
                has_tf32=spec is not None and spec.has_tf32,
            ),
        )
        if calibration is not None:
            if observed_gpu_util is not None:
                raise InvalidArgument("observed_gpu_util needs a measured predictor")
            return _calibrated(calibration, spec, profile, power_limit_w, run)
        if published is None or run.precision != "fp32":
            # No predictor of this hardware, or one fitted on FP32 runs asked for TF32 or mixed
            # precision: the transfer model answers alone (training; it has no test rows).
            assert spec is not None and self._transfer is not None
            if observed_gpu_util is not None:
                raise InvalidArgument("observed_gpu_util needs a measured predictor (FP32 runs)")
            via = serve.transferred(
                self._transfer,
                GpuRates.from_spec(spec),
                spec.name,
                profile,
                run,
                power_limit_w=power_limit_w,
            )
            if published is None:
                return via
            note = (
                f"the measured predictor of {published.bundle.hardware} (version "
                f"{published.version}) was fitted on FP32 runs: an answer in {run.precision} "
                "is the transfer model's"
            )
            return replace(via, warnings=(note, *via.warnings))
        answer = estimate(
            published,
            profile,
            observed_gpu_util=observed_gpu_util,
            layer_answer=layer_answer,
            batch_size=batch_size,
            samples=samples,
            epochs=epochs,
        )
        if (
            spec is not None
            and self._transfer is not None
            and observed_gpu_util is None
            and spec.id in self._transfer.fitted_on.get("gpus", ())
        ):
            # The transfer model was fitted on this GPU's rows across batch sizes, power limits
            # and workloads: it answers training; the hardware's own predictor keeps the test
            # phase (the transfer model has no test rows).
            return self._train_from_transfer(answer, spec, profile, power_limit_w, run)
        if power_limit_w is None:
            return answer
        if spec is None or self._transfer is None:
            raise InvalidArgument(
                f"power_limit_w applies to a catalogued GPU with the transfer model published; "
                f"{published.bundle.hardware} is not one"
            )
        moved = serve.at_power_limit(
            answer,
            self._transfer,
            GpuRates.from_spec(spec),
            profile,
            run,
            power_limit_w=power_limit_w,
        )
        return _tied(moved)

    def _train_from_transfer(
        self,
        answer: EnergyPrediction,
        spec: GpuSpec,
        profile: GraphProfile,
        power_limit_w: float | None,
        run: RunCounts,
    ) -> EnergyPrediction:
        assert self._transfer is not None
        rates = GpuRates.from_spec(spec)
        via = serve.transferred(
            self._transfer, rates, spec.name, profile, run, power_limit_w=power_limit_w
        )
        test = answer.test
        if test is not None and power_limit_w is not None:
            test = serve.at_power_limit(
                answer, self._transfer, rates, profile, run, power_limit_w=power_limit_w
            ).test
        train, test = _tie(via.train, test)
        notes = [w for w in via.warnings if not w.startswith("no test prediction")]
        if test is not None:
            notes.append(
                f"test: answered by the predictor of {answer.hardware} "
                f"(version {answer.predictor_version})"
            )
        # Both predictors made the answer (and their warnings are its warnings): it is as much
        # an estimate as the less metered of the two, and names both sources.
        sources = [*via.energy_source.split("+"), *answer.energy_source.split("+")]
        return replace(
            via,
            train=train,
            test=test,
            warnings=tuple(dict.fromkeys((*notes, *answer.warnings))),
            energy_source="+".join(dict.fromkeys(sources)),
            energy_is_estimate=via.energy_is_estimate or answer.energy_is_estimate,
        )

    def reload(self, hardware: str) -> str:
        """Load the newest CURRENT version of ``hardware`` and swap it in; returns its version.
        A hardware with no predictor but a calibration (a few-shot fit) reloads that."""
        if hardware not in list_hardware(self._dir):
            model = calibrated.load(self._dir, hardware)
            if model is not None:
                with self._lock:
                    self._calibrated[hardware] = model
                logger.info("calibration of %s now at version %s", hardware, model.version)
                return model.version
        published = load_current(self._dir, hardware)
        with self._lock:
            self._loaded[hardware] = published
            self._errors.pop(hardware, None)
        logger.info("predictor of %s now at version %s", hardware, published.version)
        return published.version

    def deleted_under(self, hardware: str, store_path: Path) -> int:
        """How many rows the version serving ``hardware`` was fitted on are deleted now from
        the store at ``store_path`` (its tombstones; 0 when that version was fitted on another
        store, or before versions recorded their store)."""
        try:
            source = self._get(hardware).bundle.source
        except (NotFound, FailedPrecondition):
            return 0
        store_id, max_row_id = source.get("store_id"), source.get("max_row_id")
        if not store_id or not isinstance(max_row_id, int):
            return 0
        # a version fitted before manifests recorded it counts every tombstone under it
        before = source.get("deleted_before", 0)
        before = before if isinstance(before, int) else 0
        with MeasurementStore(store_path, read_only=True) as store:
            if store.store_id() != store_id:
                return 0
            return max(store.deleted_count(hardware, max_row_id) - before, 0)

    def retire(self, hardware: str) -> str:
        """Stop serving ``hardware``, now and after a restart (:func:`estimator.artifacts.retire`);
        returns the version that served."""
        from estimator.artifacts import retire

        version = retire(self._dir, hardware)
        with self._lock:
            self._loaded.pop(hardware, None)
            self._errors.pop(hardware, None)
        logger.warning("predictor of %s (version %s) no longer served", hardware, version)
        return version

    def describe(self) -> list[PredictorDescription]:
        """One entry per loaded hardware (version, energy source, selection, CV scores), then
        one per calibrated GPU without a predictor of its own."""
        with self._lock:
            loaded = dict(self._loaded)
            calibrations = dict(self._calibrated)
        return [describe_published(loaded[h]) for h in sorted(loaded)] + [
            describe_calibration(calibrations[h]) for h in sorted(calibrations) if h not in loaded
        ]
