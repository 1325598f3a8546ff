"""The scikit-learn contract the predictors claim: parameters, NotFitted, feature names."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_groundtruth import ground_truth_dataset

from estimator.predictors import (
    PHYSICAL_PREDICTORS,
    PREDICTORS,
    Boosted,
    NotFittedError,
    PowerDuration,
)
from joulecast.errors import InvalidArgument


@pytest.fixture(scope="module")
def frame():
    return ground_truth_dataset(configs_per_family=4, repeats=1, seed=3).frame


def test_get_and_set_params() -> None:
    model = Boosted(max_depth=2)
    assert model.get_params()["max_depth"] == 2
    assert model.set_params(max_depth=4, n_estimators=10) is model
    assert model.get_params()["max_depth"] == 4 and model.n_estimators == 10
    with pytest.raises(InvalidArgument, match="unknown parameter 'depth'"):
        model.set_params(depth=3)
    assert PowerDuration().get_params() == {"min_points": 3}


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_not_fitted_and_missing_features(name: str, frame) -> None:
    model = PREDICTORS[name]()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.predict(frame)
    y = frame["energy_per_sample_j"].to_numpy(float)
    model.fit(frame, y)
    pred = model.predict(frame)
    assert np.all(np.isfinite(pred) & (pred > 0))
    with pytest.raises(InvalidArgument, match="flops_conv"):
        model.predict(frame.drop(columns=["flops_conv"]))
    with pytest.raises(InvalidArgument, match="missing"):
        PREDICTORS[name]().fit(frame.drop(columns=["recurrent_steps"]), y)


def test_physical_energy_is_power_times_duration(frame) -> None:
    """Energy is answered as power x duration, and each factor follows the rows' own (the
    ground truth's power and time per sample, which a split of the energy into a wrong power
    and the duration it then implies would miss), power inside the range the rows drew."""
    y = frame["energy_per_sample_j"].to_numpy(float)
    from estimator.predictors.base import frame_rows

    power = (frame["energy_j"] / frame["duration_s"]).to_numpy(float)
    per_sample_s = (frame["duration_s"] / (frame["samples"] * frame["epochs"])).to_numpy(float)
    for name in PHYSICAL_PREDICTORS:
        model = PREDICTORS[name]().fit(frame, y)
        energy = model.predict(frame)
        parts = np.array([model.predict_parts_row(r) for r in frame_rows(frame)])
        np.testing.assert_allclose(energy, parts[:, 0] * parts[:, 1], rtol=1e-12)
        assert model.power_range_w_ == pytest.approx((power.min(), power.max()))
        assert np.all((parts[:, 0] >= power.min() - 1e-9) & (parts[:, 0] <= power.max() + 1e-9))
        # measured: every physical predictor within 7 % (median) of both on this ground truth
        assert np.median(np.abs(np.log(parts[:, 0] / power))) < 0.15, name
        assert np.median(np.abs(np.log(parts[:, 1] / per_sample_s))) < 0.15, name


def test_roofline_boosted_is_a_bounded_correction_of_the_roofline(frame) -> None:
    """The trees move the roofline's energy by at most MAX_CORRECTION either way, and the
    published state (JSON + the booster's file) reloads to the same answers."""
    import math

    from estimator.predictors.physical import MAX_CORRECTION, RooflineBoosted, RooflineEnergy

    y = frame["energy_per_sample_j"].to_numpy(float)
    boosted = RooflineBoosted().fit(frame, y)
    plain = RooflineEnergy().fit(frame, y)
    assert boosted.forest_ is not None
    ratio = boosted.predict(frame) / plain.predict(frame)
    bound = math.exp(MAX_CORRECTION) * (1 + 1e-9)
    assert np.all((ratio <= bound) & (ratio >= 1 / bound))
    assert np.ptp(ratio) > 0.01  # it does correct something
    again = RooflineBoosted.from_state(boosted.state(), boosted.blobs())
    again.feature_names_in_ = boosted.feature_names_in_
    np.testing.assert_allclose(again.predict(frame), boosted.predict(frame), rtol=1e-12)


def test_roofline_boosted_without_enough_residuals_is_the_roofline(frame) -> None:
    from estimator.predictors.physical import RooflineBoosted, RooflineEnergy

    small = frame[frame["config_id"].isin(sorted(set(frame["config_id"]))[:6])]
    y = small["energy_per_sample_j"].to_numpy(float)
    boosted = RooflineBoosted().fit(small, y)  # 5 configurations left per fold < 10 terms
    assert boosted.forest_ is None
    assert any("no correction" in n for n in boosted.notes)
    np.testing.assert_allclose(
        boosted.predict(small), RooflineEnergy().fit(small, y).predict(small), rtol=1e-12
    )
    assert boosted.blobs() == {}
    again = RooflineBoosted.from_state(boosted.state(), {})
    again.feature_names_in_ = boosted.feature_names_in_
    np.testing.assert_allclose(again.predict(small), boosted.predict(small), rtol=1e-12)


def test_serving_row_is_checked_against_the_fitted_feature_names(frame) -> None:
    """The serving path (numpy rows) refuses what ``predict`` refuses: before fit, and a row
    without a feature seen in fit."""
    import dataclasses

    from estimator.predictors.base import frame_rows

    row = frame_rows(frame)[0]
    model = PREDICTORS["boosted"]()
    with pytest.raises(NotFittedError, match="not fitted"):
        model.check_row(row)
    model.fit(frame, frame["energy_per_sample_j"].to_numpy(float))
    model.check_row(row)
    features = {k: v for k, v in row.features.items() if k != "flops_conv"}
    with pytest.raises(InvalidArgument, match="flops_conv"):
        model.check_row(dataclasses.replace(row, features=features))
