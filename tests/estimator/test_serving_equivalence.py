"""The serving fast path (numpy rows, ``predict_row``) answers exactly as the pandas reference.

The reference is the serving code as it was before the fast path: one-row DataFrames from
:func:`estimator.training.phase_row`, each predictor's frame ``predict``, ``predict_duration``.
It is kept here verbatim (:func:`_reference_estimate`) and compared with
:meth:`PredictorRegistry.predict` on many profiles: seen and unseen families, both phases,
every predictor, with and without an observed GPU utilisation, with and without utilisation in
the training rows, and a train-only bundle. Predictions must agree to 1e-9 relative (they are
bit-identical on the machines we measured; the tolerance only absorbs a libm that rounds a
one-element and a many-element ``np.log`` differently).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from estimator_groundtruth import FLOPS_RANGE, ground_truth_dataset, make_profile

from estimator import domain
from estimator.artifacts import publish
from estimator.dataset import from_frame
from estimator.evaluation import OBSERVED_VARIANT
from estimator.features import LOG_FEATURES, OBSERVED_UTIL, log_features, run_features, serve_rows
from estimator.intervals import interval
from estimator.predictors import UtilisationAware
from estimator.service import PhaseEstimate, PredictorRegistry
from estimator.training import Bundle, fit_bundle, phase_row
from joulecast.graph import GraphProfile

RTOL = 1e-9
FAMILIES = ("mlp", "cnn", "rnn", "crnn")


def _reference_phase(
    bundle: Bundle,
    features: dict[str, object],
    phase: str,
    count: float,
    observed_util: float | None,
) -> PhaseEstimate:
    """The pre-fast-path ``estimator.service._phase`` (warnings left out: compared separately)."""
    row = phase_row(features, phase)
    family = str(features["family"])
    name = bundle.selected[phase]
    q = bundle.q_log[phase].get(name, math.log(2.0))
    util_model = bundle.duration_model
    if family not in bundle.families.get(phase, ()):
        name = bundle.fallback[phase]
        q = bundle.q_log_unseen[phase]
    if observed_util is not None and util_model is not None and util_model.uses_util_:
        name = UtilisationAware.name
        q = bundle.q_log[phase].get(OBSERVED_VARIANT, bundle.q_log[phase].get(name, q))
        row[OBSERVED_UTIL] = float(observed_util)
    per_sample = float(bundle.predictors[name].predict(row)[0])
    energy = per_sample * count
    q *= domain.WIDEN ** len(domain.outside(bundle.domain, features))  # out-of-domain requests
    low, high = interval(energy, q)
    duration = None
    if util_model is not None:
        seconds = float(util_model.predict_duration(row)[0]) * count
        duration = seconds if np.isfinite(seconds) else None
    return PhaseEstimate(energy, low, high, duration, name)


def _reference_estimate(
    bundle: Bundle,
    profile: GraphProfile,
    *,
    batch_size: int,
    samples: int,
    epochs: int,
    observed_gpu_util: float | None,
) -> dict[str, PhaseEstimate | None]:
    features = run_features(
        profile, phase="train", batch_size=batch_size, samples=samples, epochs=epochs
    )
    count = float(samples) * float(epochs)
    return {
        phase: _reference_phase(bundle, features, phase, count, observed_gpu_util)
        if phase in bundle.phases
        else None
        for phase in ("train", "test")
    }


def _profiles(n: int, seed: int) -> list[GraphProfile]:
    """Profiles of every family across (and beyond) the measured range, plus unseen labels."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        family = FAMILIES[i % len(FAMILIES)]
        lo, hi = FLOPS_RANGE[family]
        flops = float(np.exp(rng.uniform(np.log(lo / 30), np.log(hi * 30))))
        profile = make_profile(family, flops, rng)
        if i % 5 == 4:  # a family no training row has: the family-free fallback answers
            profile = dataclasses.replace(profile, family="transformer")
        out.append(profile)
    # degenerate graphs: zero FLOPs of some kinds, zero params, zero intensity
    base = make_profile("mlp", 1e7, rng)
    out.append(
        dataclasses.replace(
            base,
            params=0,
            weight_bytes=0,
            flops_forward=0,
            flops_train=0,
            flops_by_kind={"conv": 0, "dense": 0, "recurrent": 0, "other": 0},
            arithmetic_intensity=0.0,
        )
    )
    out.append(dataclasses.replace(base, arithmetic_intensity=math.inf))
    return out


def _close(fast: float | None, ref: float | None) -> bool:
    if fast is None or ref is None:
        return fast is ref
    return fast == ref or abs(fast - ref) <= RTOL * abs(ref)


def _assert_same(fast: PhaseEstimate | None, ref: PhaseEstimate | None, where: str) -> None:
    if ref is None:
        assert fast is None, where
        return
    assert fast is not None, where
    assert fast.predictor == ref.predictor, where
    for field in ("energy_j", "energy_low_j", "energy_high_j", "duration_s"):
        a, b = getattr(fast, field), getattr(ref, field)
        assert _close(a, b), f"{where} {field}: fast {a!r} vs reference {b!r}"


@pytest.fixture(scope="module", params=["util", "no-util", "three-families", "train-only"])
def registry(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    kind = request.param
    if kind == "util":
        dataset = ground_truth_dataset(configs_per_family=4, repeats=1, seed=3)
    elif kind == "no-util":
        dataset = ground_truth_dataset(configs_per_family=4, repeats=1, seed=4, with_util=False)
    elif kind == "three-families":  # crnn queries are an unseen family here
        dataset = ground_truth_dataset(
            configs_per_family=4, repeats=1, seed=5, families=("mlp", "cnn", "rnn")
        )
    else:
        full = ground_truth_dataset(configs_per_family=4, repeats=1, seed=6)
        dataset = from_frame("train-only", full.frame[full.frame["phase"] == "train"])
    folder = tmp_path_factory.mktemp(kind)
    publish(fit_bundle(dataset), folder)
    registry = PredictorRegistry(folder)
    bundle = registry._get(None).bundle  # the bundle as loaded from disk, boosters included
    return registry, bundle


def test_every_predictor_row_equals_frame(registry) -> None:
    """``predict_row`` of every predictor equals its frame ``predict`` on the same row."""
    _, bundle = registry
    checked = 0
    for profile in _profiles(24, seed=11):
        for batch_size in (1, 256):
            features = run_features(
                profile, phase="train", batch_size=batch_size, samples=1000, epochs=3
            )
            rows = serve_rows(features)
            for phase in ("train", "test"):
                frame = phase_row(features, phase)
                row = rows[phase]
                np.testing.assert_array_equal(row.log, log_features(frame))
                assert row.log.shape == (1, len(LOG_FEATURES))
                for util in (None, 37.5):
                    if util is not None:
                        frame = frame.assign(**{OBSERVED_UTIL: util})
                        row = row.with_observed_util(util)
                    for name, model in bundle.predictors.items():
                        ref = float(model.predict(frame)[0])
                        fast = model.predict_row(row)
                        assert (math.isnan(ref) and math.isnan(fast)) or _close(fast, ref), (
                            f"{name} {phase} {profile.family} util={util}: {fast!r} vs {ref!r}"
                        )
                        checked += 1
                    util_model = bundle.duration_model
                    if util_model is not None:
                        ref_t = float(util_model.predict_duration(frame)[0])
                        assert _close(util_model.predict_duration_row(row), ref_t)
                        both = util_model.predict_row_and_duration(row)
                        assert _close(both[1], ref_t)
    assert checked >= 400


def test_registry_predict_equals_reference(registry) -> None:
    """The whole serving answer equals the pandas reference, all fields, both phases."""
    registry_, bundle = registry
    rng = np.random.default_rng(17)
    answered = set()
    for i, profile in enumerate(_profiles(40, seed=23)):
        batch_size = int(rng.choice([1, 8, 32, 512]))
        samples = int(rng.integers(1, 100_000))
        epochs = int(rng.integers(1, 50))
        for util in (None, float(rng.uniform(0, 100)), 100.0):
            where = f"profile {i} ({profile.family}) bs={batch_size} util={util}"
            ref = _reference_estimate(
                bundle,
                profile,
                batch_size=batch_size,
                samples=samples,
                epochs=epochs,
                observed_gpu_util=util,
            )
            try:
                fast = registry_.predict(
                    profile,
                    batch_size=batch_size,
                    samples=samples,
                    epochs=epochs,
                    observed_gpu_util=util,
                )
            except Exception as exc:  # the reference must fail the same way: no prediction
                assert any(
                    r is not None and not (math.isfinite(r.energy_j) and r.energy_j > 0)
                    for r in ref.values()
                ), f"{where}: fast path raised {exc!r}"
                continue
            _assert_same(fast.train, ref["train"], f"{where} train")
            _assert_same(fast.test, ref["test"], f"{where} test")
            answered.update(e.predictor for e in (fast.train, fast.test) if e is not None)
    assert len(answered) >= 2, answered


def test_fast_path_warnings_unchanged(registry) -> None:
    """Warnings (unseen family, observed utilisation, CPU-only note) are still given."""
    registry_, bundle = registry
    profile = dataclasses.replace(
        make_profile("mlp", 1e8, np.random.default_rng(0)), family="transformer"
    )
    result = registry_.predict(profile, batch_size=8, samples=10, epochs=1, observed_gpu_util=50)
    assert any("'transformer'" in w and "wider interval" in w for w in result.warnings)
    util_model = bundle.duration_model
    if util_model is not None and util_model.uses_util_:
        assert any("observed GPU utilisation 50 %" in w for w in result.warnings)
    elif util_model is not None:
        assert any("observed GPU utilisation ignored" in w for w in result.warnings)


def test_reference_and_fast_agree_bitwise_on_sample(tmp_path: Path) -> None:
    """On the typical query the fast path is bit-identical, not merely within tolerance."""
    bundle = fit_bundle(ground_truth_dataset(configs_per_family=4, repeats=1, seed=8))
    publish(bundle, tmp_path)
    registry_ = PredictorRegistry(tmp_path)
    loaded = registry_._get(None).bundle
    for family in FAMILIES:
        profile = make_profile(family, 3e8, np.random.default_rng(1))
        fast = registry_.predict(profile, batch_size=8, samples=1578, epochs=2)
        ref = _reference_estimate(
            loaded, profile, batch_size=8, samples=1578, epochs=2, observed_gpu_util=None
        )
        assert fast.train == ref["train"] and fast.test == ref["test"], family
