"""The scikit-learn contract the predictors claim: parameters, NotFitted, feature names."""

from __future__ import annotations

import numpy as np
import pytest
from estimator_groundtruth import ground_truth_dataset

from estimator.predictors import PREDICTORS, Boosted, NotFittedError, PowerDuration
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
    y = frame["energy_per_sample_j"].to_numpy(float)
    from estimator.predictors.base import frame_rows

    for name in (
        "power-duration",
        "roofline",
        "energy-power",
        "roofline-energy",
        "boosted-duration",
    ):
        model = PREDICTORS[name]().fit(frame, y)
        energy = model.predict(frame)
        parts = np.array([model.predict_parts_row(r) for r in frame_rows(frame)])
        np.testing.assert_allclose(energy, parts[:, 0] * parts[:, 1], rtol=1e-12)
        lo, hi = model.power_range_w_
        assert np.all((parts[:, 0] >= lo) & (parts[:, 0] <= hi))


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
