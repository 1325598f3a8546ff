"""Fits recover a known ground-truth energy model; CV scores and intervals are honest."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_groundtruth import SLOPE_J_PER_FLOP, TEST_SLOPE_RATIO, ground_truth_dataset

from estimator.predictors import FamilyAffine, UtilisationAware
from estimator.training import Bundle, fit_bundle


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return fit_bundle(ground_truth_dataset(configs_per_family=7, repeats=1, seed=0))


def test_family_slopes_recovered(bundle: Bundle) -> None:
    model = bundle.predictors["family-affine"]
    assert isinstance(model, FamilyAffine)
    for phase, ratio in (("train", 1.0), ("test", TEST_SLOPE_RATIO)):
        slopes = model.slopes(phase)
        for family, truth in SLOPE_J_PER_FLOP.items():
            assert slopes[family] == pytest.approx(truth * ratio, rel=0.15), (phase, family)


def test_learned_predictors_beat_global_flops(bundle: Bundle) -> None:
    loco = bundle.scores["loco"]
    for phase in ("train", "test"):
        baseline = loco[phase]["global-flops"]["mape_pct"]
        assert loco[phase]["boosted"]["mape_pct"] < baseline
        assert loco[phase]["utilisation-aware"]["mape_pct"] < baseline
        assert loco[phase][bundle.selected[phase]]["mape_pct"] < 0.5 * baseline


def test_stage_two_recovers_power_model(bundle: Bundle) -> None:
    model = bundle.predictors["utilisation-aware"]
    assert isinstance(model, UtilisationAware) and model.uses_util_
    assert model.idle_power_w_ == pytest.approx(30.0, rel=0.1)
    assert model.k_w_per_pct_ == pytest.approx(0.5, rel=0.1)


def test_cv_coverage_near_nominal(bundle: Bundle) -> None:
    for phase in ("train", "test"):
        for scheme in ("loco",):
            cov = bundle.scores[scheme][phase][bundle.selected[phase]]["coverage_90"]
            assert 0.80 <= cov <= 0.97, (scheme, phase, cov)


def test_interval_coverage_on_fresh_configurations(bundle: Bundle) -> None:
    fresh = ground_truth_dataset(configs_per_family=10, repeats=1, seed=7).frame
    covered = []
    for phase in ("train", "test"):
        rows = fresh[fresh["phase"] == phase]
        name = bundle.selected[phase]
        pred = bundle.predictors[name].predict(rows)
        q = bundle.q_log[phase][name]
        err = np.abs(np.log(rows["energy_per_sample_j"].to_numpy()) - np.log(pred))
        covered.extend(err <= q)
    assert 0.80 <= float(np.mean(covered)) <= 0.97 + 0.03


def test_predictions_positive_and_scale_free_of_units(bundle: Bundle) -> None:
    frame = ground_truth_dataset(configs_per_family=3, repeats=1, seed=3).frame
    for model in bundle.predictors.values():
        pred = model.predict(frame)
        assert np.all(np.isfinite(pred)) and np.all(pred > 0)


def test_unseen_family_uses_family_free_fallback(bundle: Bundle) -> None:
    for phase in ("train", "test"):
        assert bundle.predictors[bundle.fallback[phase]].family_free
        assert bundle.q_log_unseen[phase] >= bundle.q_log[phase][bundle.fallback[phase]]


def test_cpu_rows_degrade_utilisation_aware_with_note() -> None:
    dataset = ground_truth_dataset(configs_per_family=3, repeats=1, with_util=False)
    model = UtilisationAware().fit(dataset.frame, dataset.frame["energy_per_sample_j"].to_numpy())
    assert not model.uses_util_
    assert any("no GPU utilisation" in n for n in model.notes)
    assert np.all(model.predict(dataset.frame) > 0)
