"""Claims C1-C6 and questions Q1-Q2 on synthetic stores: all hold by default, and each verdict
flips when the data are built to contradict it."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from estimator.report.claims import FAILS, HOLDS, UNTESTABLE, ClaimResult, evaluate
from estimator.report.data import load
from estimator.report.stats import affine, separation_auc, spearman


def _verdicts(path: Path) -> dict[str, ClaimResult]:
    data, store = load(path)
    store.close()
    results, details = evaluate(data)
    assert details
    return {r.claim: r for r in results}


def test_every_claim_holds_on_data_built_to_agree(make_store: Callable[..., Path]) -> None:
    claims = _verdicts(make_store())
    assert list(claims) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2"]
    for claim in claims.values():
        assert claim.verdict == HOLDS, (claim.claim, claim.reason)
        assert math.isfinite(claim.value), claim.claim


def test_c1_fails_when_energy_falls_with_flops_for_one_family(
    make_store: Callable[..., Path],
) -> None:
    claims = _verdicts(make_store(falling=("cnn",)))
    assert claims["C1"].verdict == FAILS
    assert "cnn" in claims["C1"].reason
    assert claims["C1"].value < 0


def test_c4_fails_when_mlp_train_and_test_power_overlap(make_store: Callable[..., Path]) -> None:
    claims = _verdicts(make_store(overlap_mlp=True))
    assert claims["C4"].verdict == FAILS
    assert "mlp" in claims["C4"].reason
    assert claims["C4"].value < 1.0
    assert claims["C1"].verdict == HOLDS


def test_estimated_energy_makes_power_and_utilisation_claims_untestable(
    make_store: Callable[..., Path],
) -> None:
    claims = _verdicts(make_store(estimated=True))
    for name in ("C4", "C5", "C6"):
        assert claims[name].verdict == UNTESTABLE, name
        assert "estimate" in claims[name].reason
    assert claims["C1"].verdict == HOLDS
    assert "estimate" in claims["C1"].reason


def test_cpu_rows_without_utilisation_make_c5_c6_untestable(
    make_store: Callable[..., Path],
) -> None:
    claims = _verdicts(make_store(cpu=True))
    assert claims["C5"].verdict == UNTESTABLE
    assert claims["C6"].verdict == UNTESTABLE
    assert "cpu" in claims["C5"].reason
    assert claims["C4"].verdict == HOLDS


def test_q1_fails_when_energy_is_not_linear_in_dataset_size(
    make_store: Callable[..., Path],
) -> None:
    assert _verdicts(make_store(sizes="curved"))["Q1"].verdict == FAILS
    assert _verdicts(make_store("one-size.db", sizes=None))["Q1"].verdict == UNTESTABLE


def test_q2_follows_the_frames_rnn(make_store: Callable[..., Path]) -> None:
    assert _verdicts(make_store(frames="conv"))["Q2"].verdict == FAILS
    assert _verdicts(make_store("no-frames.db", frames=None))["Q2"].verdict == UNTESTABLE


def test_statistics() -> None:
    fit = affine([1, 2, 3, 4], [3, 5, 7, 9])
    assert math.isclose(fit.slope, 2) and math.isclose(fit.intercept, 1)
    assert math.isclose(fit.r2, 1)
    assert math.isnan(affine([1, 1, 1], [1, 2, 3]).r2)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]).rho == -1
    assert math.isnan(spearman([1, 2], [1, 2]).rho)
    assert separation_auc([5, 6], [1, 2]) == 1.0
    assert separation_auc([1, 2], [1, 2]) == 0.5


def test_runs_of_different_sizes_are_rescaled_to_one_workload(
    make_store: Callable[..., Path],
) -> None:
    """Imported data (every run its own sample count) is compared per sample, not dropped."""
    import sqlite3

    path = make_store(sizes=None, frames=None)
    with sqlite3.connect(path) as db:
        # each run measured on its own number of samples: energy and duration grow with it
        db.execute(
            "UPDATE measurements SET samples = samples * (1 + id % 5), "
            "energy_j = energy_j * (1 + id % 5), duration_s = duration_s * (1 + id % 5)"
        )
    data, store = load(path)
    store.close()
    assert data.rescaled
    assert data.reference_samples == 1000
    assert data.reference["config_id"].nunique() == data.configs["config_id"].nunique()
    assert set(data.reference["samples"]) == {1000}
    claims = {r.claim: r for r in evaluate(data)[0]}
    assert claims["C1"].verdict == HOLDS, claims["C1"].reason


def test_affine_log_judges_small_configurations_alike() -> None:
    """A linear-space R² is decided by the largest point; the log-space one sees the small ones.

    Nine small configurations scattered ±60 % around a line plus one huge one on it: the linear
    R² is near 1, the log-space R² falls below the near-affine bar.
    """
    import numpy as np

    from estimator.report.stats import affine_log

    x = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000.0])
    wobble = np.array([1.6, 0.4, 1.6, 0.4, 1.6, 0.4, 1.6, 0.4, 1.6, 1.0])
    y = 2.0 * x * wobble
    assert affine(x, y).r2 > 0.99
    assert affine_log(x, y).r2 < 0.9  # below the near-affine bar (AFFINE_R2)
    clean = affine_log(x, 2.0 * x + 1.0)
    assert clean.r2 == pytest.approx(1.0)
    assert clean.slope == pytest.approx(2.0) and clean.intercept == pytest.approx(1.0)


def test_rescaled_reference_keeps_one_row_per_configuration_at_the_common_batch() -> None:
    """A batch-size sweep and a dataset-size sweep beside timed windows are not extra
    architectures: the reference holds each configuration-phase once, at the batch most
    configurations share, from its longest measurement, rescaled to 1000 samples."""
    import pandas as pd

    from estimator.report.data import RESCALED_SAMPLES, common_batch, rescaled_reference

    rows = []
    for config, window in (("cnn-a", 40), ("mlp-b", 3000), ("rnn-c", 600)):
        rows.append((config, 8, window, 2.0 * window))
    rows += [("cnn-a", b, 64, 1.0 * 64 * (1 + b)) for b in (1, 4, 16, 32)]  # batch sweep
    rows += [("mlp-b", 8, n, 2.5 * n) for n in (8, 16, 32, 64)]  # dataset-size sweep
    configs = pd.DataFrame(
        [
            {"config_id": c, "variant": "paper", "phase": "test", "batch_size": b,
             "samples": n, "epochs": 1, "energy_j": e, "duration_s": e / 4}
            for c, b, n, e in rows
        ]
    )  # fmt: skip
    assert common_batch(configs) == 8
    reference = rescaled_reference(configs, 8)
    assert sorted(reference["config_id"]) == ["cnn-a", "mlp-b", "rnn-c"]
    assert set(reference["batch_size"]) == {8}
    assert set(reference["samples"]) == {RESCALED_SAMPLES}
    # the window (2 J per sample), not the 8-64 clip sweep (2.5 J per sample)
    assert reference.set_index("config_id").loc["mlp-b", "energy_j"] == pytest.approx(2000.0)
    imported = configs.assign(batch_size=range(len(configs)))  # a batch per run
    assert common_batch(imported) == 0
    assert len(rescaled_reference(imported, 0)) == len(imported)
