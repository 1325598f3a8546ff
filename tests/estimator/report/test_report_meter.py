"""The report's two sections for a GPU with a meter: beside the paper's T4, and what the meter
could resolve (window lengths, repeat spread, counter against sampled power, idle share)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from estimator.report import build_report
from estimator.report.data import load
from estimator.report.meter import summarize


def test_a_measured_gpu_store_is_set_beside_the_papers_t4(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    result = build_report(make_store(), tmp_path / "out")
    report = result.report_path.read_text()
    beside = report.split("## Beside the paper's Tesla T4", 1)[1].split("\n## ", 1)[0]
    assert "Tesla T4 (70 W board power" in beside and "every 5 s" in beside
    for claim in ("C1", "C2", "C3", "C4", "C5", "C6"):
        row = next(line for line in beside.splitlines() if line.startswith(f"| {claim} |"))
        assert f"**{result.verdict(claim)}**" in row
    assert "## What the meter could resolve" in report


def test_an_estimate_is_not_set_beside_a_measurement(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    report = build_report(make_store(estimated=True), tmp_path / "out").report_path.read_text()
    assert "Beside the paper" not in report
    assert "What the meter could resolve" not in report


def test_the_meter_summary_reads_windows_repeats_and_idle_share_off_the_rows(
    make_store: Callable[..., Path],
) -> None:
    data, store = load(make_store())
    store.close()
    summary = summarize(data)
    assert summary is not None
    runs = data.runs
    for phase in ("train", "test"):
        durations = runs.loc[runs["phase"] == phase, "duration_s"]
        low, mid, high = summary.duration_s[phase]
        assert (low, mid, high) == pytest.approx(
            (durations.min(), durations.median(), durations.max())
        )
        assert summary.short_share[phase] == pytest.approx(float((durations < 1.0).mean()))
        share = runs.loc[runs["phase"] == phase].eval("idle_power_w * duration_s / energy_j")
        assert summary.idle_share_median[phase] == pytest.approx(float(share.median()))
    assert sum(b.rows for b in summary.windows) == len(runs)
    # The conftest's rows store power = energy / duration exactly, and one repeated MLP at +1 %.
    assert all(b.counter_over_sampled_median == pytest.approx(1.0) for b in summary.windows)
    repeated = [b for b in summary.windows if b.repeat_cv_median == b.repeat_cv_median]
    assert repeated and all(0 < b.repeat_cv_median < 0.01 for b in repeated)
