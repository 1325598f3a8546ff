"""Scoring the transfer model on data it never saw, beside two baselines on the same folds.

- **leave-one-GPU-out**: fit on every other GPU's rows, answer the held-out GPU from its
  catalog figures alone (what a user of an unmeasured GPU gets);
- **leave-one-workload-out**: fit on the other workloads of every GPU, answer the held-out
  workload on every GPU (a network nobody measured).

Intervals are honest only if they are sized without the held-out group: in each fold the
interval is the 5-95 % range of the log errors of an inner leave-one-group-out run on the
training groups alone (split-conformal over groups), so its coverage on the held-out group is a
real test.

Baselines, fitted on the same training folds:

- ``joules-per-flop``: energy = the GPU's median J per training FLOP; a GPU without rows takes
  the median over the training GPUs (what a FLOPs-only tool can do);
- ``tdp-over-peak``: energy = TDP × FLOPs / (FP32 peak × η), one efficiency η for all (the
  spec-sheet rule of thumb, with its one constant fitted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from estimator.transfer.fit import fit_params, log_errors

log = logging.getLogger(__name__)

LOW_Q, HIGH_Q = 0.05, 0.95
SCHEMES = {"logo": "hardware", "lowo": "workload"}
"""Cross-validation schemes and the column whose groups each holds out."""


def total_flops(frame: pd.DataFrame) -> np.ndarray:
    """FLOPs of each row's whole run (3 x forward per training sample)."""
    per_sample = frame[["flops_conv", "flops_dense", "flops_recurrent", "flops_other"]].sum(axis=1)
    passes = np.where(frame["train"].to_numpy() > 0, 3.0, 1.0)
    return per_sample.to_numpy(float) * passes * frame["samples"] * frame["epochs"].clip(lower=1)


def joules_per_flop(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    per_gpu = (train["energy_j"] / total_flops(train)).groupby(train["hardware"]).median()
    pooled = float(per_gpu.median())
    rate = test["hardware"].map(per_gpu).fillna(pooled).to_numpy(float)
    return rate * total_flops(test)


def tdp_over_peak(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    def ideal(frame: pd.DataFrame) -> np.ndarray:
        return frame["tdp_w"].to_numpy(float) * total_flops(frame) / frame["fp32_flops"]

    eta = float(np.exp(np.median(np.log(ideal(train) / train["energy_j"].to_numpy(float)))))
    return ideal(test) / eta


BASELINES: dict[str, Callable[[pd.DataFrame, pd.DataFrame], np.ndarray]] = {
    "joules-per-flop": joules_per_flop,
    "tdp-over-peak": tdp_over_peak,
}


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold answers for every row: ``predictions`` has, per row, the held-out group,
    ``transfer_j`` with its interval ``low_j``..``high_j``, and each baseline's answer."""

    scheme: str
    predictions: pd.DataFrame


def _inner_band(train: pd.DataFrame, column: str, max_nfev: int) -> tuple[float, float]:
    """5 % and 95 % log-error quantiles of leave-one-group-out over ``train``'s groups."""
    errors: list[np.ndarray] = []
    groups = train[column].unique()
    if len(groups) < 2:
        return -0.5, 0.5
    for group in groups:
        inner_fit = train[train[column] != group]
        inner_test = train[train[column] == group]
        params = fit_params(inner_fit, max_nfev=max_nfev)
        err = log_errors(params, inner_test)["log_error_energy"].to_numpy()
        errors.append(_balanced(err, len(groups)))
    pooled = np.concatenate(errors)
    return float(np.quantile(pooled, LOW_Q)), float(np.quantile(pooled, HIGH_Q))


def _balanced(err: np.ndarray, groups: int) -> np.ndarray:
    """At most 200 errors per group (evenly spaced in sorted order), so one big group does not
    set the band alone."""
    if len(err) <= 200:
        return err
    return np.quantile(err, np.linspace(0, 1, 200))


def cross_validate(
    frame: pd.DataFrame, scheme: str, max_nfev: int = 300, inner: bool = True
) -> CrossValidation:
    column = SCHEMES[scheme]
    parts: list[pd.DataFrame] = []
    for group in sorted(frame[column].unique()):
        train = frame[frame[column] != group]
        test = frame[frame[column] == group]
        params = fit_params(train, max_nfev=max_nfev)
        errors = log_errors(params, test)
        low, high = _inner_band(train, column, max_nfev) if inner else (-0.5, 0.5)
        part = pd.DataFrame(
            {
                "held_out": group,
                "hardware": test["hardware"],
                "workload": test["workload"],
                "batch_size": test["batch_size"],
                "power_limit_w": test["power_limit_w"],
                "measured_j": test["energy_j"],
                "transfer_j": errors["energy_j"],
                "low_j": errors["energy_j"] * np.exp(-high),
                "high_j": errors["energy_j"] * np.exp(-low),
                "transfer_s": errors["duration_s"],
                "transfer_w": errors["power_w"],
                "measured_s": test["duration_s"],
                "measured_w": test["power_w"],
            },
            index=test.index,
        )
        for name, baseline in BASELINES.items():
            part[f"{name}_j"] = baseline(train, test)
        log.info("%s: held out %s (%d rows)", scheme, group, len(test))
        parts.append(part)
    return CrossValidation(scheme, pd.concat(parts).sort_index())


def scores(cv: CrossValidation, by: str = "held_out") -> pd.DataFrame:
    """Per held-out group and overall: median APE, MAPE and Spearman of energy for the
    transfer model and each baseline, and the transfer interval's coverage."""
    frame = cv.predictions
    return pd.DataFrame(
        [_group_row(cv.scheme, group, part) for group, part in [*frame.groupby(by), ("all", frame)]]
    )


def source_of(workload: str) -> str:
    """Who measured a workload's rows: the first part of its id (``zeus/cifar100/...`` ->
    ``zeus``, ``ecnas-bench`` -> ``ecnas-bench``)."""
    return workload.split("/", 1)[0]


def source_scores(cv: CrossValidation) -> pd.DataFrame:
    """:func:`scores` of each held-out group measured by more than one source, split by
    source (group ``"<group>, <source> rows"``): one source's many rows of one workload (the
    RTX 6000's 2,783 EC-NAS runs beside Zeus's 370) otherwise set a GPU's median alone."""
    frame = cv.predictions
    sources = frame["workload"].map(source_of)
    rows = [
        _group_row(cv.scheme, f"{group}, {source} rows", part)
        for group, held in frame.groupby("held_out")
        if sources[held.index].nunique() > 1
        for source, part in held.groupby(sources[held.index])
    ]
    return pd.DataFrame(rows)


def _group_row(scheme: str, group: object, part: pd.DataFrame) -> dict[str, object]:
    row: dict[str, object] = {"scheme": scheme, "group": group, "n": len(part)}
    for name in ("transfer", *BASELINES):
        row.update(_metrics(name, part[f"{name}_j"], part["measured_j"]))
    inside = (part["low_j"] <= part["measured_j"]) & (part["measured_j"] <= part["high_j"])
    row["coverage90"] = float(inside.mean())
    row["width"] = float(np.median(part["high_j"] / part["low_j"]))
    return row


def _metrics(name: str, predicted: pd.Series, measured: pd.Series) -> Mapping[str, float]:
    ape = (predicted - measured).abs() / measured
    rho = spearmanr(predicted, measured).statistic if len(measured) > 2 else float("nan")
    return {
        f"{name}_median_ape": float(ape.median()),
        f"{name}_mape": float(ape.mean()),
        f"{name}_spearman": float(rho),
    }
