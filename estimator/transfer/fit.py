"""Fitting the transfer model's shared parameters on measured rows of several GPUs.

The loss is in log space on both halves of energy, duration and average power, so a model that
gets energy right for the wrong reason (too slow at too little power) pays for it. Each
(GPU, workload) group weighs the same in total: 2,783 NAS-Bench cells on one GPU must not
outvote six workloads on three. Robust (soft-L1) so that a few odd rows (a trainer that changes
what it does above some batch size) bend the fit less than a squared loss would.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from estimator.transfer.data import query_arrays
from estimator.transfer.model import FIXED_PARAMS, PARAMS, initial_params, predict

log = logging.getLogger(__name__)

SOFT_L1_SCALE = 0.15
"""Residuals (natural log) beyond about this size count linearly, not squared: 16 %."""

TIED_EFFICIENCIES = ("eff_conv", "eff_dense", "eff_recurrent")
TIE_SIGMA = 0.7
"""The matrix kinds' efficiencies are drawn towards their common (geometric) mean, one
standard deviation a factor 2: each kind is seen in one or two workloads only (recurrent in
DeepSpeech2 alone), so without the tie a workload held out takes its kind's efficiency with it
and the answer for it runs off by orders of magnitude."""
PRIOR_SIGMA = 2.0
"""Every other parameter is held loosely (a factor e**2 ≈ 7) at its initial value, so a
parameter no row informs stays where physics put it instead of drifting to a bound."""


def group_weights(frame: pd.DataFrame) -> np.ndarray:
    """Per row, 1 / sqrt(rows of its (hardware, workload) group): every group the same total
    weight in a squared loss."""
    sizes = frame.groupby(["hardware", "workload"])["hardware"].transform("size")
    return 1.0 / np.sqrt(sizes.to_numpy(dtype=float))


def fit_params(
    frame: pd.DataFrame,
    start: Mapping[str, float] | None = None,
    max_nfev: int = 400,
    prior: Mapping[str, float] | None = None,
    prior_sigma: float = PRIOR_SIGMA,
) -> dict[str, float]:
    """Parameters minimising the weighted log errors of duration and power over ``frame``.

    ``prior``: fitted parameters to stay near (each held at ``prior_sigma`` in log space), the
    few-shot case: a handful of rows of one GPU correct a model fitted on many others."""
    if frame.empty:
        raise ValueError("no rows to fit the transfer model on")
    names = [n for n in PARAMS if n not in FIXED_PARAMS]
    x = query_arrays(frame)
    measured_t = np.log(frame["duration_s"].to_numpy(dtype=float))
    measured_p = np.log(frame["power_w"].to_numpy(dtype=float))
    weight = group_weights(frame)
    init = dict(initial_params(), **(start or {}))
    fixed = {n: float((prior or init)[n]) for n in FIXED_PARAMS}
    lower = np.log([PARAMS[n][1] for n in names])
    upper = np.log([PARAMS[n][2] for n in names])
    theta0 = np.clip(np.log([init[n] for n in names]), lower + 1e-9, upper - 1e-9)

    prior_at = np.log([(prior or initial_params())[n] for n in names])
    tied = [] if prior else [names.index(n) for n in TIED_EFFICIENCIES]
    loose = [i for i in range(len(names)) if i not in tied]
    if prior:
        theta0 = np.clip(prior_at, lower + 1e-9, upper - 1e-9)

    def residuals(theta: np.ndarray) -> np.ndarray:
        params = dict(zip(names, np.exp(theta), strict=True), **fixed)
        out = predict(params, x)
        r_t = np.log(out.duration_s) - measured_t
        r_p = np.log(out.power_w) - measured_p
        tie = (theta[tied] - theta[tied].mean()) / TIE_SIGMA if tied else np.zeros(0)
        held = (theta[loose] - prior_at[loose]) / prior_sigma
        res = np.concatenate([weight * r_t, weight * r_p, tie, held])
        return np.nan_to_num(res, nan=10.0, posinf=10.0, neginf=-10.0)

    result = least_squares(
        residuals,
        theta0,
        bounds=(lower, upper),
        loss="soft_l1",
        f_scale=SOFT_L1_SCALE,
        max_nfev=max_nfev,
        x_scale="jac",
    )
    params = dict(zip(names, (float(v) for v in np.exp(result.x)), strict=True), **fixed)
    log.info("transfer fit: cost %.4g after %d evaluations", result.cost, result.nfev)
    return params


def log_errors(params: Mapping[str, float], frame: pd.DataFrame) -> pd.DataFrame:
    """Per row, log(predicted / measured) of energy, duration and power, and the prediction."""
    out = predict(params, query_arrays(frame))
    return pd.DataFrame(
        {
            "energy_j": out.energy_j,
            "duration_s": out.duration_s,
            "power_w": out.power_w,
            "log_error_energy": np.log(out.energy_j / frame["energy_j"].to_numpy(dtype=float)),
            "log_error_duration": np.log(
                out.duration_s / frame["duration_s"].to_numpy(dtype=float)
            ),
            "log_error_power": np.log(out.power_w / frame["power_w"].to_numpy(dtype=float)),
        },
        index=frame.index,
    )


def describe(params: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in params.items() if math.isfinite(v))
