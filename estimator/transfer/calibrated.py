"""A GPU's calibrated transfer model: one hashed JSON per hardware, beside the transfer model.

``<artifacts>/transfer/calibrated/<hardware>.json`` holds the parameters a calibration fitted
(:mod:`estimator.transfer.fewshot`), the served interval of each phase, and what it rests on:
how many rows of which configurations, the prior's version and parameters, the prior width
chosen and why, and the rows' log errors before (the transfer model) and after. Written and
read like the transfer model (:mod:`estimator.transfer.artifact`): atomically, its version the
hash of its content, refused when edited, truncated or of another schema.

An interval is built from two bands: the calibration's own leave-one-configuration-out errors on
this GPU (how well its rows teach a network they did not include) and the transfer model's
leave-one-workload-out band (how far a network outside every measured workload strays). Both
estimate the error of a network the rows did not include; the first is this GPU's but rests on a
handful of configurations, so each side's half-width is their pooled spread, the transfer
model's band counting as :data:`PRIOR_CONFIGS` configurations: the interval narrows as a
calibration spans more networks, and a few lucky ones cannot make it narrow. A phase whose
calibration could hold nothing out keeps the transferred band (leave-one-GPU-out with
leave-one-workload-out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from estimator.transfer.artifact import TransferModel, checked_params
from estimator.transfer.files import (
    CALIBRATED_KIND,
    CALIBRATED_NAME,
    SCHEMA_VERSION,
    calibrated_folder,
    content_hash,
    read_versioned,
    write_versioned,
)
from estimator.transfer.model import PARAMS, stored_params
from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    from estimator.transfer.fewshot import FewShot  # fitting only: loading imports no pandas

KIND = CALIBRATED_KIND
LOW_Q, HIGH_Q = 0.05, 0.95
PRIOR_CONFIGS = 3
"""How many held-out configurations the transfer model's leave-one-workload-out band counts as
when pooled with a calibration's own (:data:`estimator.transfer.fewshot.MIN_CONFIGS`, the
fewest a calibration holds out): three configurations of a suite weigh as much as the Zeus
workloads' band, thirty outweigh it ten to one."""


@dataclass(frozen=True)
class CalibratedModel:
    """The transfer model calibrated on one GPU's rows.

    ``hardware``: the id its rows carry (and answers are asked by); ``gpu``: the catalog id whose
    figures the model reads; ``bands``: per phase, the (low, high) log-error quantiles an
    answer's interval is built from (``energy × exp(-high) .. energy × exp(-low)``); a phase
    absent from it is not answered. ``calibration``: what it rests on (rows, configurations,
    sigma, the prior's version and parameters, errors before and after, when it was measured).
    """

    hardware: str
    gpu: str
    params: Mapping[str, float]
    bands: Mapping[str, tuple[float, float]]
    calibration: Mapping[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "kind": KIND,
            "hardware": self.hardware,
            "gpu": self.gpu,
            "params": stored_params(self.params),
            "bands": {k: [float(v[0]), float(v[1])] for k, v in sorted(self.bands.items())},
            "calibration": self.calibration,
        }

    @property
    def version(self) -> str:
        return content_hash(self.content())

    @property
    def rows(self) -> int:
        return int(self.calibration.get("rows", 0))

    @property
    def replayed_rows(self) -> int:
        """How many of its rows a replayed trace metered (``--meter replay``): a recording of
        other work played back to test the code path, never this GPU's measurement."""
        return int((self.calibration.get("meters") or {}).get("replay", 0))

    @property
    def measured(self) -> str:
        """When the rows were measured: ``2026-12-04`` or ``2026-12-04..2026-12-05``."""
        span = self.calibration.get("measured_at") or []
        days = sorted({str(day)[:10] for day in span if day})
        if not days:
            return "date unknown"
        return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"


def check_hardware(hardware: str) -> str:
    """``hardware`` as a file name; InvalidArgument when it cannot be one."""
    if not CALIBRATED_NAME.match(hardware):
        raise InvalidArgument(
            f"hardware {hardware!r} cannot name a calibration (lower-case letters, digits, "
            "'.', '_' and '-', at most 64)"
        )
    return hardware


def folder(artifacts_dir: str | Path) -> Path:
    return calibrated_folder(artifacts_dir)


def path_of(artifacts_dir: str | Path, hardware: str) -> Path:
    return folder(artifacts_dir) / f"{check_hardware(hardware)}.json"


def publish(model: CalibratedModel, artifacts_dir: str | Path) -> Path:
    """Write ``model`` atomically; returns the file's path."""
    return write_versioned(path_of(artifacts_dir, model.hardware), model.content())


def load(artifacts_dir: str | Path, hardware: str) -> CalibratedModel | None:
    """The calibration of ``hardware``, None when there is none; FailedPrecondition when its
    file is not one this code wrote (schema, hash, a parameter out of its box, another
    hardware's content under this name)."""
    path = path_of(artifacts_dir, hardware)
    if not path.is_file():
        return None
    try:
        body = read_versioned(path, KIND)
        if body["hardware"] != hardware:
            raise ValueError(f"it calibrates {body['hardware']!r}, not {hardware!r}")
        params = checked_params(body["params"])
        bands = {str(k): (float(v[0]), float(v[1])) for k, v in body["bands"].items()}
        if not all(math.isfinite(a) and math.isfinite(b) and a <= b for a, b in bands.values()):
            raise ValueError("a band is not a finite (low, high) pair")
        gpu = str(body["gpu"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FailedPrecondition(f"{path} is not a usable calibrated model: {exc}") from exc
    return CalibratedModel(hardware, gpu, params, bands, body.get("calibration", {}))


def list_calibrated(artifacts_dir: str | Path) -> list[str]:
    """Hardware ids with a calibration file (not checked: :func:`load` checks)."""
    root = folder(artifacts_dir)
    if not root.is_dir():
        return []
    names = (p.name.removesuffix(".json") for p in root.iterdir() if p.suffix == ".json")
    return sorted(n for n in names if CALIBRATED_NAME.match(n))


def combined(loco: np.ndarray, configs: int, lowo: tuple[float, float]) -> tuple[float, float]:
    """The served band of a phase: each side's half-width pooled, as variances, from the
    held-out errors' 5 or 95 % quantile (``configs`` configurations' worth) and the transfer
    model's leave-one-workload-out band (worth :data:`PRIOR_CONFIGS` configurations)."""
    low = min(float(np.quantile(loco, LOW_Q)), 0.0)
    high = max(float(np.quantile(loco, HIGH_Q)), 0.0)
    total = PRIOR_CONFIGS + configs

    def pooled(own: float, prior: float) -> float:
        return math.sqrt((PRIOR_CONFIGS * prior**2 + configs * own**2) / total)

    return -pooled(low, lowo[0]), pooled(high, lowo[1])


def transferred_band(prior: TransferModel) -> tuple[float, float]:
    """The band of an answer for a GPU nobody measured (leave-one-GPU-out with
    leave-one-workload-out, as :func:`estimator.transfer.answer.band`)."""
    from estimator.transfer.answer import band

    return band(prior, gpu_measured=False)


def build(
    fit: FewShot,
    prior: TransferModel,
    *,
    hardware: str,
    gpu: str,
    facts: Mapping[str, Any] | None = None,
) -> CalibratedModel:
    """The model to publish from a calibration ``fit`` on ``prior``; ``facts`` adds what the
    rows say about themselves (device name, power limit, energy sources, when measured)."""
    lowo = prior.bands.get("lowo", (-0.5, 0.5))
    bands: dict[str, tuple[float, float]] = {}
    loco_summary: dict[str, Any] = {}
    for phase in PHASES:
        rows = fit.held_out[fit.held_out["phase"] == phase]
        if rows.empty:
            continue
        errors = fit.loco_errors(phase)
        if len(errors):
            held_configs = rows.loc[rows["loco_j"].notna(), "configuration"].nunique()
            bands[phase] = combined(errors, held_configs, lowo)
            loco_summary[phase] = _errors_summary(errors)
        elif phase == "train":
            bands[phase] = transferred_band(prior)
    held = fit.held_out
    before = np.log(held["prior_j"] / held["measured_j"])
    after = np.log(held["fitted_j"] / held["measured_j"])
    calibration = {
        "rows": len(held),
        "rows_by_phase": {p: int(n) for p, n in held["phase"].value_counts().sort_index().items()},
        "configurations": fit.configurations,
        "batch_sizes": sorted({int(b) for b in held["batch_size"]}),
        "sigma": fit.sigma,
        "sigma_scores": {f"{s:g}": round(v, 4) for s, v in fit.sigma_scores.items()},
        "held_out": loco_summary,
        "log_errors": {
            phase: {
                "prior": _errors_summary(before[held["phase"] == phase].to_numpy()),
                "calibrated": _errors_summary(after[held["phase"] == phase].to_numpy()),
            }
            for phase in sorted(held["phase"].unique())
        },
        "prior": {
            "version": prior.version,
            "params": stored_params(prior.params),
            "lowo_band": [float(lowo[0]), float(lowo[1])],
        },
        "param_log_shift": {
            k: round(math.log(float(fit.params[k]) / float(prior.params[k])), 4) for k in PARAMS
        },
        **dict(facts or {}),
    }
    return CalibratedModel(hardware, gpu, dict(fit.params), bands, calibration)


def _errors_summary(errors: np.ndarray) -> dict[str, float]:
    """Median |APE| and the 5/50/95 % quantiles of log(predicted / measured)."""
    if len(errors) == 0:
        return {"n": 0}
    return {
        "n": len(errors),
        "median_ape": round(float(np.median(np.abs(np.expm1(errors)))), 4),
        "q05": round(float(np.quantile(errors, LOW_Q)), 4),
        "median": round(float(np.median(errors)), 4),
        "q95": round(float(np.quantile(errors, HIGH_Q)), 4),
    }
