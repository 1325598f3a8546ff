"""Few-shot calibration: a handful of rows measured on one GPU move the transfer model towards it.

The published transfer model's parameters are the prior; :func:`estimator.transfer.fit.fit_params`
refits them on the GPU's rows, each parameter held at the prior by a log-normal of width
``sigma``. How far the rows may pull is chosen on the rows themselves: every ``sigma`` of
:data:`SIGMAS` is scored by leave-one-configuration-out (a configuration is one network, at every
batch size and phase it was measured at), and the lowest held-out log error wins. The held-out
errors at that ``sigma`` are also what the served interval is built from.

Why configurations and not rows: corrections learnt on one network do not carry to others (on
the Zeus data, six rows of one workload of a held-out GPU left its other workloads' median error
where it was); only rows that span kinds of work and batch sizes teach the GPU, and only holding
a whole network out tells whether they did. With fewer than :data:`MIN_CONFIGS` configurations
nothing can be held out, ``sigma`` stays at :data:`DEFAULT_SIGMA` (near the prior) and the
interval stays the transferred one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from estimator.transfer.fit import fit_params, log_errors

log = logging.getLogger(__name__)

SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Prior widths tried (natural log of each parameter: 0.5 lets it move ~1.6x at one standard
deviation, 8 lets the rows decide nearly alone)."""
DEFAULT_SIGMA = 0.5
"""The width used when the rows span too few configurations to choose one: the prior keeps the
parameters the rows cannot be shown to teach."""
MIN_ROWS = 3
"""Fewer rows than this are not a calibration."""
MIN_CONFIGS = 3
"""Configurations needed to choose ``sigma`` and size the interval by leaving one out."""
FIT_PHASES = ("train",)
"""The phases whose rows move the parameters: the prior was fitted on training rows only, and
a test row (one forward pass) informs the host's and the kernels' costs differently enough that
mixing the two moved the training answers of a suite away from its own rows."""


@dataclass(frozen=True)
class FewShot:
    """A calibration's outcome.

    ``params``: the calibrated parameters; ``sigma``: the prior width used; ``sigma_scores``:
    leave-one-configuration-out RMSE of log energy (training rows) per width tried (empty when
    too few configurations); ``held_out``: one row per measured row with ``configuration``,
    ``phase``, ``batch_size``, ``samples``, ``measured_j``, ``prior_j`` (the transfer model's answer),
    ``loco_j`` (the answer of a calibration without its configuration; NaN when none was made)
    and ``fitted_j`` (the final calibration's answer).
    """

    params: Mapping[str, float]
    sigma: float
    sigma_scores: Mapping[float, float]
    held_out: pd.DataFrame

    @property
    def configurations(self) -> list[str]:
        return sorted(self.held_out["configuration"].unique())

    def loco_errors(self, phase: str) -> np.ndarray:
        """log(held-out answer / measured) of every row of ``phase`` (empty without LOCO)."""
        part = self.held_out[(self.held_out["phase"] == phase) & self.held_out["loco_j"].notna()]
        return np.log(part["loco_j"] / part["measured_j"]).to_numpy(float)


def check_rows(frame: pd.DataFrame) -> None:
    """ValueError unless ``frame`` holds one GPU's rows, at least :data:`MIN_ROWS` to fit."""
    if frame.empty or frame["hardware"].nunique() != 1:
        raise ValueError("a calibration needs the rows of exactly one GPU")
    usable = frame[frame["phase"].isin(FIT_PHASES)]
    if len(usable) < MIN_ROWS:
        raise ValueError(
            f"a calibration needs at least {MIN_ROWS} {'/'.join(FIT_PHASES)} rows, got "
            f"{len(usable)}"
        )


def calibrate(
    frame: pd.DataFrame,
    prior: Mapping[str, float],
    sigmas: tuple[float, ...] = SIGMAS,
) -> FewShot:
    """Fit the transfer model's parameters to one GPU's rows, held at ``prior``.

    ``frame`` is :func:`estimator.transfer.data.from_stores`' frame of one GPU (both phases may
    be present: test rows are scored, never fitted)."""
    check_rows(frame)
    frame = frame.reset_index(drop=True)
    configs = frame["workload"].astype(str)
    fit_rows = frame["phase"].isin(FIT_PHASES).to_numpy()
    groups = sorted(configs[fit_rows].unique())
    scores: dict[float, float] = {}
    loco: dict[float, np.ndarray] = {}
    if len(groups) >= MIN_CONFIGS:
        for sigma in sigmas:
            loco[sigma] = _leave_one_out(frame, configs, fit_rows, prior, sigma)
            scores[sigma] = _score(frame, configs, loco[sigma])
        sigma = min(scores, key=lambda s: (round(scores[s], 6), s))
        log.info("calibration: sigma %g by LOCO (%s)", sigma, _fmt(scores))
    else:
        sigma = DEFAULT_SIGMA
        log.info(
            "calibration: %d configuration(s), fewer than %d: sigma %g, no held-out check",
            len(groups),
            MIN_CONFIGS,
            sigma,
        )
    params = fit_params(frame[fit_rows], prior=prior, prior_sigma=sigma)
    held_out = pd.DataFrame(
        {
            "configuration": configs,
            "phase": frame["phase"],
            "batch_size": frame["batch_size"],
            "samples": frame["samples"],
            "measured_j": frame["energy_j"],
            "prior_j": log_errors(prior, frame)["energy_j"],
            "loco_j": loco.get(sigma, np.full(len(frame), np.nan)),
            "fitted_j": log_errors(params, frame)["energy_j"],
        }
    )
    return FewShot(params, sigma, scores, held_out)


def _leave_one_out(
    frame: pd.DataFrame,
    configs: pd.Series,
    fit_rows: np.ndarray,
    prior: Mapping[str, float],
    sigma: float,
) -> np.ndarray:
    """Per row, the energy a calibration without the row's configuration answers."""
    out = np.full(len(frame), np.nan)
    for config in sorted(configs[fit_rows].unique()):
        held = (configs == config).to_numpy()
        params = fit_params(frame[fit_rows & ~held], prior=prior, prior_sigma=sigma)
        out[held] = log_errors(params, frame[held])["energy_j"].to_numpy(float)
    return out


def _score(frame: pd.DataFrame, configs: pd.Series, answers: np.ndarray) -> float:
    """RMSE of log energy over the held-out training rows, each configuration weighing the
    same (a network measured at two batch sizes must not count twice)."""
    train = frame["phase"].isin(FIT_PHASES).to_numpy() & np.isfinite(answers)
    err = pd.Series(np.log(answers[train] / frame["energy_j"].to_numpy(float)[train]))
    per_config = (err**2).groupby(configs[train].to_numpy()).mean()
    return float(math.sqrt(per_config.mean()))


def _fmt(scores: Mapping[float, float]) -> str:
    return ", ".join(f"{s:g}: {v:.3f}" for s, v in scores.items())
