"""From a store holding a few rows of one catalogued GPU to a published calibration.

The rows may come from ``joulecast calibrate`` (the reference suite, measured minutes ago), from
an import (a few Zeus-format rows) or from AddMeasurements: ``joulecast fit`` and Retrain route a
catalogued GPU with fewer than :data:`MAX_CONFIG_PHASES` configuration-phases here, instead of
fitting per-hardware predictors that a handful of networks cannot cross-validate.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from estimator.transfer import artifact, calibrated, fewshot
from estimator.transfer.calibrated import CalibratedModel
from estimator.transfer.gpu import GpuRates
from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound
from joulecast.hardware import GpuSpec, find_one_gpu
from joulecast.measurement import Row, is_estimate
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

MAX_CONFIG_PHASES = 20
"""Below this many configuration-phases (a network at one batch size, in one phase) of a
catalogued GPU, ``joulecast fit`` calibrates the transfer model instead of fitting the
per-hardware predictors: those choose among themselves by leaving configurations out, which a
handful of networks (one or two per family) cannot support; the smallest measured GPU store
shipped has 86."""


@dataclass(frozen=True)
class Calibration:
    """A published calibration: the model, the fit it came from, and its file."""

    model: CalibratedModel
    fit: fewshot.FewShot
    path: Path


def measured_rows(store_path: Path | str, hardware: str) -> list[Row]:
    """The successful, measured (not estimated) rows of ``hardware`` in a store."""
    with MeasurementStore(store_path, read_only=True) as store:
        rows = store.rows(status="ok", hardware=hardware)
    return [r for r in rows if not (r.energy_is_estimate or is_estimate(r.energy_source or ""))]


def config_phases(rows: list[Row]) -> int:
    """Distinct (configuration, batch size, phase) among ``rows``."""
    return len({(r.config_id, r.batch_size, r.phase) for r in rows})


def gpu_of_rows(hardware: str, rows: list[Row]) -> GpuSpec | None:
    """The catalogued GPU the rows ran on: by their hardware id, else the device name NVML gave."""
    spec = find_one_gpu(hardware)
    if spec is not None:
        return spec
    names = {r.device_name for r in rows if r.device_name}
    found = {s.id: s for s in (find_one_gpu(n) for n in names) if s is not None}
    return next(iter(found.values())) if len(found) == 1 else None


def few_shot_hardware(
    store_path: Path | str, hardware: str | None, artifacts_dir: Path | str
) -> str | None:
    """The hardware ``joulecast fit`` should calibrate rather than fit: a catalogued GPU whose
    measured rows span fewer than :data:`MAX_CONFIG_PHASES` configuration-phases, when
    ``artifacts_dir`` holds the transfer model to calibrate (the prior); None otherwise (the
    per-hardware predictors are then fitted, as without calibration)."""
    from estimator.dataset import choose_hardware

    if not Path(store_path).is_file() or not artifact.path_in(artifacts_dir).is_file():
        return None
    with MeasurementStore(store_path, read_only=True) as store:
        names = store.hardware_names()
    try:
        chosen = choose_hardware(names, hardware)
    except (NotFound, InvalidArgument, FailedPrecondition):
        return None  # the regular fit says what is wrong, in its own words
    rows = measured_rows(store_path, chosen)
    if not rows or config_phases(rows) >= MAX_CONFIG_PHASES:
        return None
    return chosen if gpu_of_rows(chosen, rows) is not None else None


def calibrate_and_publish(
    store_path: Path | str,
    hardware: str,
    artifacts_dir: Path | str,
) -> Calibration:
    """Calibrate the transfer model published under ``artifacts_dir`` on ``hardware``'s rows and
    publish the result beside it. FailedPrecondition when there is no transfer model, the GPU
    is not catalogued, or too few usable rows."""
    from estimator.transfer.data import from_stores

    prior = artifact.load(artifacts_dir)
    if prior is None:
        raise FailedPrecondition(
            f"no transfer model under {artifacts_dir}/transfer: a calibration needs it as its "
            "prior (the repository ships one in artifacts/)"
        )
    calibrated.check_hardware(hardware)
    rows = measured_rows(store_path, hardware)
    spec = gpu_of_rows(hardware, rows)
    if spec is None:
        raise FailedPrecondition(
            f"{hardware} is not a catalogued GPU (nor is the device its rows name): the transfer "
            "model reads a GPU's published figures; `joulecast hardware` lists the catalog"
        )
    rates = GpuRates.from_spec(spec)
    data = from_stores([store_path], lambda h: rates if h == hardware else None)
    frame = data.frame
    if not frame.empty:
        frame = frame[frame["hardware"] == hardware]
    try:
        fit = fewshot.calibrate(frame, prior.params)
    except ValueError as exc:
        reason = f"cannot calibrate {hardware}: {exc} (left out: {data.skipped or 'nothing'})"
        raise FailedPrecondition(reason) from exc
    model = calibrated.build(fit, prior, hardware=hardware, gpu=spec.id, facts=_facts(rows))
    path = calibrated.publish(model, artifacts_dir)
    log.info("calibration of %s (%s) published: %s", hardware, model.version, path)
    return Calibration(model, fit, path)


def _facts(rows: list[Row]) -> dict[str, Any]:
    """What the rows say about the device and when they were measured."""
    started = sorted(r.started_at or r.finished_at or "" for r in rows)
    started = [s for s in started if s]
    limits = sorted({float(r.power_limit_w) for r in rows if r.power_limit_w})
    return {
        "energy_sources": dict(Counter(r.energy_source or "unknown" for r in rows)),
        "meters": dict(Counter(r.meter or "unknown" for r in rows)),
        "device_names": sorted({r.device_name for r in rows if r.device_name}),
        "drivers": sorted({r.driver for r in rows if r.driver}),
        "power_limits_w": limits,
        "measured_at": [started[0], started[-1]] if started else [],
        "fitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class HeldOutItem:
    """One suite item (a configuration at a batch size, one phase) answered without its rows,
    before calibration (the transfer model, its served interval) and after (a calibration on
    the other configurations, the interval their held-out errors give). Energies per sample,
    in joules; medians over the item's repeats."""

    configuration: str
    phase: str
    batch_size: int
    measured_j: float
    before_j: float
    before_low_j: float
    before_high_j: float
    after_j: float | None
    after_low_j: float | None
    after_high_j: float | None


def held_out_items(done: Calibration, prior: artifact.TransferModel) -> list[HeldOutItem]:
    """Before and after for every item of the calibration, each answered without its own
    configuration; the after-interval of an item comes from the other configurations' held-out
    errors only (none where nothing was held out)."""
    from estimator.transfer.answer import band

    held = done.fit.held_out.copy()
    lowo = prior.bands.get("lowo", (-0.5, 0.5))
    before_band = band(prior, gpu_measured=done.model.gpu in prior.fitted_on.get("gpus", []))
    held["error"] = np.log(held["loco_j"] / held["measured_j"])
    items: list[HeldOutItem] = []
    keys = ["configuration", "phase", "batch_size"]
    for (config, phase, batch), part in held.groupby(keys, sort=True):
        per = part[["measured_j", "prior_j", "loco_j"]].div(part["samples"], axis=0).median()
        after = per["loco_j"] if np.isfinite(per["loco_j"]) else None
        others = held[(held["phase"] == phase) & (held["configuration"] != config)]
        others = others[np.isfinite(others["error"])]
        low = high = None
        if after is not None and not others.empty:
            lo, hi = calibrated.combined(
                others["error"].to_numpy(float), others["configuration"].nunique(), lowo
            )
            low, high = after * math.exp(-hi), after * math.exp(-lo)
        served = phase == "train"  # the transfer model answers training only
        prior_j = float(per["prior_j"])
        items.append(
            HeldOutItem(
                configuration=str(config),
                phase=str(phase),
                batch_size=int(batch),
                measured_j=float(per["measured_j"]),
                before_j=prior_j if served else None,
                before_low_j=prior_j * math.exp(-before_band[1]) if served else None,
                before_high_j=prior_j * math.exp(-before_band[0]) if served else None,
                after_j=None if after is None else float(after),
                after_low_j=low,
                after_high_j=high,
            )
        )
    return items
