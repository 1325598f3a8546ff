"""From measured GPU rows to a published transfer model: cross-validate, size the bands, fit.

The bands an answer is served with are the 5-95 % log errors of the two held-out schemes over
every row (each group at most 200 errors, so that 2,783 NAS-Bench cells do not set them alone);
the scores beside them are those of the nested run (:mod:`estimator.transfer.evaluate`), whose
coverage is a real test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from estimator.transfer.artifact import TransferModel
from estimator.transfer.evaluate import HIGH_Q, LOW_Q, CrossValidation, cross_validate, scores
from estimator.transfer.fit import fit_params

log = logging.getLogger(__name__)

MIN_GPUS = 2
MIN_WORKLOADS = 2


@dataclass(frozen=True)
class Trained:
    model: TransferModel
    cv: Mapping[str, CrossValidation]
    scores: pd.DataFrame


def _band(cv: CrossValidation) -> tuple[float, float]:
    frame = cv.predictions
    err = np.log(frame["transfer_j"] / frame["measured_j"])
    parts = []
    for _, group in err.groupby(frame["held_out"]):
        values = group.to_numpy()
        parts.append(values if len(values) <= 200 else np.quantile(values, np.linspace(0, 1, 200)))
    pooled = np.concatenate(parts)
    return float(np.quantile(pooled, LOW_Q)), float(np.quantile(pooled, HIGH_Q))


def _scores_json(table: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in table.to_dict(orient="records"):
        key = f"{row.pop('scheme')}/{row.pop('group')}"
        out[key] = {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in row.items()}
    return out


def train(
    frame: pd.DataFrame,
    *,
    excluded: Iterable[str] = (),
    sources: Mapping[str, int] | None = None,
    inner: bool = True,
) -> Trained:
    """Cross-validate (leave-one-GPU-out, leave-one-workload-out), then fit on every row.

    ``excluded`` names workloads left out of fitting and scoring (said in the model's
    ``fitted_on``, with why the caller left them out)."""
    excluded = tuple(excluded)
    frame = frame[~frame["workload"].isin(excluded)].reset_index(drop=True)
    gpus = sorted(frame["hardware"].unique())
    workloads = sorted(frame["workload"].unique())
    if len(gpus) < MIN_GPUS or len(workloads) < MIN_WORKLOADS:
        raise ValueError(
            f"a transfer model needs rows of at least {MIN_GPUS} GPUs and {MIN_WORKLOADS} "
            f"workloads; got {gpus} and {workloads}"
        )
    cvs = {scheme: cross_validate(frame, scheme, inner=inner) for scheme in ("logo", "lowo")}
    table = pd.concat([scores(cv) for cv in cvs.values()], ignore_index=True)
    params = fit_params(frame)
    model = TransferModel(
        params=params,
        bands={scheme: _band(cv) for scheme, cv in cvs.items()},
        scores=_scores_json(table),
        fitted_on={
            "rows": len(frame),
            "gpus": gpus,
            "workloads": workloads,
            "excluded_workloads": list(excluded),
            "rows_per_gpu": {k: int(v) for k, v in frame["hardware"].value_counts().items()},
            "energy_sources": dict(sources or {}),
            "phases": sorted(frame["phase"].unique()),
            "batch_sizes": [int(frame["batch_size"].min()), int(frame["batch_size"].max())],
        },
    )
    log.info("transfer model %s fitted on %d rows", model.version, len(frame))
    return Trained(model, cvs, table)
