"""How a convolution's cost follows its channels rounded up to whole blocks, from the rows of
``python -m collector.campaign.channels``.

Per channel count ``c`` (as many out as in): the median over rounds of CPU seconds per true MAC
of a 3x3, padding-1 convolution. Fitted in log space on the log padding factor
``2 log(ceil_B(c) / c)`` and ``log c`` (wider layers are more efficient whatever their padding):
a slope of 1 on the padding factor says the layer costs its padded MACs, 0 that padding is free.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PaddingFit:
    """The slope of log cost per MAC on the log padding factor, and what it rests on."""

    block: int
    slope: float
    slope_se: float
    aligned_ps_per_mac: float
    unaligned_ps_per_mac: float
    channels: int
    windows: int


def _per_channel(path: Path) -> tuple[dict[int, float], int]:
    """Channel count -> median CPU picoseconds per true MAC over its windows."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    seconds: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        n, c, h, w = (int(v) for v in r["shape"].split("x"))
        macs = n * h * w * c * c * 9
        seconds[c].append(float(r["cpu_s"]) / int(r["passes"]) / macs * 1e12)
    return {c: statistics.median(v) for c, v in sorted(seconds.items())}, len(rows)


def padding_fit(path: Path, block: int = 16) -> PaddingFit:
    per_c, windows = _per_channel(path)
    c = np.array(list(per_c), float)
    ps = np.array(list(per_c.values()), float)
    pad = 2 * np.log(np.ceil(c / block) * block / c)
    x = np.column_stack([np.ones(len(c)), pad, np.log(c)])
    y = np.log(ps)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    dof = max(len(c) - x.shape[1], 1)
    covariance = float(residual @ residual) / dof * np.linalg.inv(x.T @ x)
    aligned = c % block == 0
    return PaddingFit(
        block=block,
        slope=float(coef[1]),
        slope_se=math.sqrt(float(covariance[1, 1])),
        aligned_ps_per_mac=float(np.median(ps[aligned])) if aligned.any() else math.nan,
        unaligned_ps_per_mac=float(np.median(ps[~aligned])),
        channels=len(c),
        windows=windows,
    )
