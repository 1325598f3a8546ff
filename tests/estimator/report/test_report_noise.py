"""Verdicts that know the noise: replicate CV stated, effects within it inconclusive, and
impossible runs (test dearer than training) discarded and counted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from estimator.report.claims import FAILS, evaluate, q1
from estimator.report.data import ReportData, load
from estimator.report.noise import (
    INCONCLUSIVE,
    ReplicateNoise,
    drop_inverted,
    replicate_noise,
)


def _data(path: Path) -> ReportData:
    data, store = load(path)
    store.close()
    return data


def test_q1_departures_within_the_replicate_noise_are_inconclusive(
    make_store: Callable[..., Path],
) -> None:
    data = _data(make_store(sizes="curved"))
    quiet = ReplicateNoise(median_cv=0.001, groups=10, max_cv=0.002)
    loud = ReplicateNoise(median_cv=0.5, groups=10, max_cv=0.9)
    assert q1(data, quiet)[0].verdict == FAILS
    result = q1(data, loud)[0]
    assert result.verdict == INCONCLUSIVE and "within the replicate noise" in result.reason


def test_replicate_cv_is_measured_from_repeats_and_stated_in_every_verdict(
    make_store: Callable[..., Path],
) -> None:
    data = _data(make_store())
    noise = replicate_noise(data.runs)
    # the synthetic store repeats some runs at 1.01 x the energy: CV = 0.01 / 2.01 * sqrt(2)
    assert noise.groups > 0
    assert noise.median_cv == pytest.approx(0.01 / 2.01 * 2**0.5, rel=1e-3)
    results, _ = evaluate(data)
    assert all("replicate CV 0.7 %" in r.reason for r in results)
    assert replicate_noise(data.runs[data.runs["repeat"] == 0]).median_cv is None


def test_runs_where_testing_costs_more_than_training_are_discarded_and_counted(
    make_store: Callable[..., Path],
) -> None:
    data = _data(make_store())
    assert drop_inverted(data)[1] == 0
    victim = data.configs["config_id"].iloc[0]
    dearer = data.configs.copy()
    test_rows = (dearer["config_id"] == victim) & (dearer["phase"] == "test")
    dearer.loc[test_rows, "energy_j"] *= 1000
    cleaned, dropped = drop_inverted(replace(data, configs=dearer))
    assert dropped == 1
    assert victim not in set(cleaned.configs["config_id"]) | set(cleaned.runs["config_id"])
    assert len(cleaned.configs) == len(dearer) - int((dearer["config_id"] == victim).sum())
    results, _ = evaluate(replace(data, configs=dearer))
    assert all("1 configuration(s) discarded" in r.reason for r in results)
    assert isinstance(cleaned.reference, pd.DataFrame)
