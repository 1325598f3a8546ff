"""Markdown of the two things single random layers miss in a real network, for LAYER-SUM.md
(see check_networks.py): what an unmeasured op costs against the pool it is priced on, and how
a convolution's cost follows its channels rounded up to whole blocks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from estimator.layerwise.channels import padding_fit
from estimator.layerwise.elementwise import OTHER, REFERENCE, op_ratios
from estimator.layerwise.features import CHANNEL_BLOCK


def _when(path: Path) -> str:
    rows = pd.read_csv(path)
    others = rows["others_busy_cores"].dropna()
    return (
        f"{rows['timestamp_utc'].min()} to {rows['timestamp_utc'].max()} UTC, "
        f"{len(rows)} windows on `{rows['cpu_model'].iloc[0]}` (torch {rows['torch_version'].iloc[0]}, "
        f"one thread), 1-minute load median {rows['loadavg_1m'].median():.1f}, other work kept "
        f"{others.median():.2f} cores busy (median); meter `{rows['energy_source'].iloc[0]}` "
        f"(CPU seconds: a ratio of two of them is a ratio of CPU times)"
    )


def _reference_ps_per_byte(path: Path) -> tuple[float, float]:
    """Lowest and highest, over shapes, of the reference pool's median CPU ps per byte."""
    rows = pd.read_csv(path)
    pool = rows[rows["item"] == REFERENCE]
    per_byte = pool["cpu_s"] / pool["passes"] / pool["bytes_moved"] * 1e12
    by_shape = per_byte.groupby(pool["shape"]).median()
    return float(by_shape.min()), float(by_shape.max())


def elementwise_section(path: Path, xeon_ps_per_byte: float) -> list[str]:
    found = op_ratios(path)
    low, high = _reference_ps_per_byte(path)
    lines = [
        f"`{path.name}` (`python -m collector.campaign.elementwise`): {_when(path)}.",
        "",
        "| op | energy per byte / kernel-1 MaxPool's | range over windows | windows |",
        "|---|---|---|---|",
    ]
    for op, r in found.items():
        if op != OTHER:
            lines.append(f"| {op} | {r.ratio:.3f} | {r.low:.3f}-{r.high:.3f} | {r.windows} |")
    other = found[OTHER]
    lines += [
        f"| any other op | {other.ratio:.3f} (median of the above) | | |",
        "",
        f"On the Xeon the reference pool ran at {xeon_ps_per_byte:.0f} ps per byte (the "
        f"predictor's price per byte over the rows' median power), on this VM at {low:.0f}-"
        f"{high:.0f} CPU ps per byte over the shapes: the same scalar loop. Per byte, ReLU costs "
        f"a few percent of it; on the largest shape every op is dearer, the output's fresh "
        f"pages being faulted in on every pass.",
    ]
    return lines


def channels_section(path: Path) -> list[str]:
    fits = {b: padding_fit(path, b) for b in (8, CHANNEL_BLOCK, 32)}
    fit = fits[CHANNEL_BLOCK]
    return [
        f"`{path.name}` (`python -m collector.campaign.channels`, 3x3 convolutions of "
        f"{fit.channels} channel counts, as many out as in): {_when(path)}.",
        "",
        "| block | slope of log CPU time per MAC on log padding factor | ± (s.e.) |",
        "|---|---|---|",
        *(f"| {b} | {f.slope:.2f} | {f.slope_se:.2f} |" for b, f in fits.items()),
        "",
        f"With {CHANNEL_BLOCK}-channel blocks the slope is {fit.slope:.2f}: a layer costs its "
        f"padded MACs. Layers whose channels are whole blocks ran at "
        f"{fit.aligned_ps_per_mac:.1f} CPU ps per MAC, the others at "
        f"{fit.unaligned_ps_per_mac:.1f} (medians).",
    ]
