"""What the meter could resolve: window lengths, repeat spread and the idle share of energy.

A GPU's energy counter advances in steps (NVML refreshes it every 20-100 ms, and on A100/H100
the power behind it is sampled for only part of each period: Yang et al., SC '24), and the
sampled board power is a moving average (about 1 s from Ampere on). A window of a few tenths
of a second is therefore read to within a few steps of the counter, and its sampled power still
carries the previous window's load. The paper's protocol (1578 clips, batch 8) gives windows of
minutes on a Tesla T4 and of tenths of a second on an H200: this section says, from the rows
themselves, how much of the data lies where the meter cannot resolve it, so a reader can weigh
the claims and the predictor's test-phase intervals accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from estimator.report.data import ReportData
from estimator.report.stats import fmt

WINDOW_EDGES_S = (0.0, 0.25, 0.5, 1.0, 2.0, 5.0, float("inf"))
"""Bins of window length: below about 1 s the counter's steps and the power average's lag
are a sizeable part of the window."""

SHORT_WINDOW_S = 1.0


@dataclass(frozen=True)
class WindowBin:
    """Rows whose window lasted ``low_s``..``high_s`` seconds, in one phase."""

    phase: str
    low_s: float
    high_s: float
    rows: int
    repeat_cv_median: float
    """Median over configuration-phases of the repeat CV of energy (std / mean), NaN if none
    was repeated."""
    counter_over_sampled_median: float
    """Median of (energy / duration) / mean sampled power: 1 when both agree; above 1 when the
    sampled power lags a rise, as a moving average does."""


@dataclass(frozen=True)
class MeterSummary:
    windows: tuple[WindowBin, ...]
    short_share: dict[str, float]
    """Per phase, the share of rows with a window under :data:`SHORT_WINDOW_S`."""
    duration_s: dict[str, tuple[float, float, float]]
    """Per phase, the (min, median, max) window length in seconds."""
    idle_share_median: dict[str, float]
    """Per phase, the median share of the energy that the idle baseline accounts for
    (idle power x duration / energy)."""


def summarize(data: ReportData) -> MeterSummary | None:
    """None for estimated energy (no meter to resolve anything) or rows without durations."""
    runs = data.runs
    if data.estimated or runs.empty or "duration_s" not in runs:
        return None
    runs = runs.assign(
        cv=runs.groupby(["config_id", "variant", "phase", "samples", "batch_size"])[
            "energy_j"
        ].transform(_cv),
        ratio=runs["energy_j"] / runs["duration_s"] / runs["power_mean_w"],
        idle_share=runs["idle_power_w"] * runs["duration_s"] / runs["energy_j"],
    )
    bins: list[WindowBin] = []
    for phase in sorted(runs["phase"].unique(), reverse=True):  # train first
        part = runs[runs["phase"] == phase]
        for low, high in pairwise(WINDOW_EDGES_S):
            cell = part[(part["duration_s"] > low) & (part["duration_s"] <= high)]
            if cell.empty:
                continue
            per_config = cell.drop_duplicates(["config_id", "variant", "samples", "batch_size"])
            bins.append(
                WindowBin(
                    phase=phase,
                    low_s=low,
                    high_s=high,
                    rows=len(cell),
                    repeat_cv_median=_median(per_config["cv"]),
                    counter_over_sampled_median=_median(cell["ratio"]),
                )
            )
    phases = sorted(runs["phase"].unique(), reverse=True)
    return MeterSummary(
        windows=tuple(bins),
        short_share={
            p: float((runs.loc[runs["phase"] == p, "duration_s"] < SHORT_WINDOW_S).mean())
            for p in phases
        },
        duration_s={
            p: tuple(
                float(v) for v in runs.loc[runs["phase"] == p, "duration_s"].quantile([0, 0.5, 1])
            )  # type: ignore[misc]
            for p in phases
        },
        idle_share_median={p: _median(runs.loc[runs["phase"] == p, "idle_share"]) for p in phases},
    )


def _cv(energy: pd.Series) -> float:
    if len(energy) < 2 or energy.mean() <= 0:
        return float("nan")
    return float(energy.std() / energy.mean())


def _median(values: pd.Series) -> float:
    finite = pd.to_numeric(values, errors="coerce").replace([np.inf, -np.inf], np.nan).dropna()
    return float(finite.median()) if not finite.empty else float("nan")


def _pct(value: float) -> str:
    return f"{fmt(100 * value, 1)} %" if np.isfinite(value) else "n/a"


def _edge(value: float) -> str:
    return "∞" if not np.isfinite(value) else f"{value:g}"


def markdown(summary: MeterSummary) -> list[str]:
    lines = [
        "## What the meter could resolve",
        "",
        "A window is read by the energy counter at its two edges; the counter advances in steps "
        "of tens of milliseconds and the sampled power is a moving average (about 1 s on recent "
        "GPUs), so a window under a second is resolved to within a few steps, and its sampled "
        "power still carries the previous window's load. Repeat CV is the spread of the energy "
        "of one configuration-phase's repeats (median over configuration-phases); the "
        "counter/sampled ratio is energy/duration over the mean sampled power.",
        "",
    ]
    for phase, (low, mid, high) in summary.duration_s.items():
        lines.append(
            f"- **{phase}**: windows {low:.2f}–{high:.1f} s (median {mid:.2f} s); "
            f"{_pct(summary.short_share[phase])} under {SHORT_WINDOW_S:g} s; the idle baseline "
            f"is a median {_pct(summary.idle_share_median[phase])} of a window's energy."
        )
    lines += [
        "",
        "| phase | window (s) | rows | repeat CV of energy | counter / sampled power |",
        "|---|---|---|---|---|",
    ]
    for b in summary.windows:
        ratio = b.counter_over_sampled_median
        lines.append(
            f"| {b.phase} | {_edge(b.low_s)}–{_edge(b.high_s)} | {b.rows} "
            f"| {_pct(b.repeat_cv_median)} | {fmt(ratio, 2) if np.isfinite(ratio) else 'n/a'} |"
        )
    lines.append("")
    return lines
