"""Replicate noise: how much repeats of one configuration-phase differ, and runs to distrust.

A verdict is only as good as the data's repeatability: an effect smaller than the spread of
repeats is noise. :func:`replicate_noise` measures the median coefficient of variation of
energy per sample over configuration-phases measured at least twice; every claim states it,
and an effect within :data:`NOISE_FACTOR` x that CV is "inconclusive (noise)".
:func:`drop_inverted` discards configurations whose test cost more than training per sample
(impossible: a training step contains the forward pass) and counts them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pandas as pd

from estimator.report.data import ReportData

INCONCLUSIVE = "inconclusive (noise)"
NOISE_FACTOR = 2.0
"""An effect (a departure, a rise) no larger than this many replicate CVs is not told from noise."""
_CONFIG_KEYS = ["config_id", "variant", "batch_size", "epochs"]
_REPLICATE_KEYS = ["config_id", "variant", "phase", "samples", "batch_size", "epochs"]


@dataclass(frozen=True)
class ReplicateNoise:
    """Median CV (a fraction) of energy per sample between repeats, over ``groups``
    configuration-phases measured at least twice; None when nothing was repeated."""

    median_cv: float | None
    groups: int
    max_cv: float | None = None

    def describe(self) -> str:
        if self.median_cv is None:
            return "replicate noise unknown (no configuration-phase repeated)"
        return (
            f"judged against replicate CV {100 * self.median_cv:.1f} % (median of "
            f"{self.groups} repeated configuration-phases, max {100 * (self.max_cv or 0):.1f} %)"
        )

    def swamps(self, relative_effect: float) -> bool:
        """True when ``relative_effect`` (a fraction) is within the noise band."""
        if self.median_cv is None or not math.isfinite(relative_effect):
            return False
        return abs(relative_effect) <= NOISE_FACTOR * self.median_cv


def replicate_noise(runs: pd.DataFrame) -> ReplicateNoise:
    """Median CV of energy per sample over configuration-phases with >= 2 repeats."""
    if runs.empty:
        return ReplicateNoise(None, 0)
    per_sample = runs.assign(_e=runs["energy_j"] / runs["samples"])
    grouped = per_sample.groupby(_REPLICATE_KEYS, dropna=False)["_e"]
    stats = pd.DataFrame({"n": grouped.size(), "mean": grouped.mean(), "std": grouped.std()})
    stats = stats[(stats["n"] >= 2) & (stats["mean"] > 0)]
    if stats.empty:
        return ReplicateNoise(None, 0)
    cv = stats["std"] / stats["mean"]
    return ReplicateNoise(float(cv.median()), len(cv), float(cv.max()))


def inverted_configurations(configs: pd.DataFrame) -> pd.DataFrame:
    """Configurations (with batch and epochs) whose test energy per sample exceeds training's."""
    per_sample = configs.assign(_e=configs["energy_j"] / configs["samples"])
    table = per_sample.pivot_table(
        index=_CONFIG_KEYS, columns="phase", values="_e", aggfunc="median"
    )
    if "train" not in table or "test" not in table:
        return pd.DataFrame(columns=_CONFIG_KEYS)
    bad = table[table["test"] > table["train"]]
    return bad.reset_index()[_CONFIG_KEYS]


def drop_inverted(data: ReportData) -> tuple[ReportData, int]:
    """``data`` without the configurations where testing cost more than training per sample;
    returns it and how many configurations were dropped."""
    bad = inverted_configurations(data.configs)
    if bad.empty:
        return data, 0
    keys = set(map(tuple, bad.to_numpy().tolist()))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            return frame
        mask = [tuple(row) not in keys for row in frame[_CONFIG_KEYS].to_numpy().tolist()]
        return frame[mask].reset_index(drop=True)

    cleaned = replace(
        data, runs=keep(data.runs), configs=keep(data.configs), reference=keep(data.reference)
    )
    return cleaned, len(keys)
