"""Fit predictors on a measurement store and publish them: ``joulecast fit``, Retrain and the
CPU half of ``joulecast calibrate``.

This module stands on serving (the canary asks a fresh version through
:func:`estimator.service.estimate` before it serves); serving never imports it, so answering
loads no fitting code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from estimator import carry
from estimator.artifacts import publish
from estimator.canary import require_servable
from estimator.dataset import Dataset, from_store
from estimator.description import PredictorDescription, describe_calibration, describe_published
from estimator.layerwise import layer_frame
from estimator.layerwise.fit import fit_layer_sum
from estimator.training import Bundle, fit_bundle
from estimator.transfer import calibrate
from joulecast import idle_meter
from joulecast.errors import FailedPrecondition
from joulecast.hardware_name import check_hardware_name


def fit_and_publish(
    store_path: Path,
    hardware: str | None,
    artifacts_dir: Path,
    held_out_csv: Path | None = None,
    allow_idle_meter: bool = False,
    dataset: Dataset | None = None,
) -> PredictorDescription:
    """Fit on one hardware's rows of a measurement store and publish a new version.

    ``hardware`` None means the only hardware in the store (an error lists them otherwise).
    ``held_out_csv``, when given, receives the leave-one-configuration-out predictions of every
    predictor (config_id, family, phase, batch_size, predictor, measured_j, predicted_j), the
    input of the report's predicted-vs-measured figure. Returns :func:`describe_published` of
    the new version.
    A catalogued GPU whose rows span fewer than
    :data:`estimator.transfer.calibrate.MAX_CONFIG_PHASES` configuration-phases is calibrated
    instead, when ``artifacts_dir`` holds the transfer model (the transfer model fitted to its
    rows, published under ``transfer/calibrated/``;
    :func:`describe_calibration` of it is returned). A CPU whose rows span fewer than
    :data:`estimator.carry.MAX_CONFIG_PHASES` is carried from another CPU's served predictor
    (:mod:`estimator.carry`) when ``artifacts_dir`` serves one. A version that fails
    :func:`estimator.canary.require_servable` is written but kept aside (CURRENT unchanged)
    and :class:`~estimator.canary.CanaryFailed` is raised with the reasons. Measured GPU rows
    whose meter saw an idle board are refused (:func:`joulecast.idle_meter.refuse`) unless
    ``allow_idle_meter``. ``dataset``, when the caller has already read the store with
    :func:`estimator.dataset.from_store`, spares reading and featurizing it again.
    """
    if hardware is not None:
        check_hardware_name(hardware)
    if not allow_idle_meter:
        idle_meter.refuse(store_path, hardware)
    few_shot = calibrate.few_shot_hardware(store_path, hardware, artifacts_dir)
    if few_shot is not None:
        # A catalogued GPU with a handful of rows: calibrate the transfer model on them rather
        # than fit predictors that so few networks cannot cross-validate.
        done = calibrate.calibrate_and_publish(store_path, few_shot, artifacts_dir)
        return describe_calibration(done.model)
    if dataset is None:
        dataset = from_store(store_path, hardware)
    prior = carry.prior_for_few(dataset, artifacts_dir)
    if prior is not None:
        # A CPU with a suite's worth of rows: another CPU's predictor carried by them, where
        # predictors fitted on so few networks alone erred by 36-62 % on configurations they
        # never saw.
        bundle = carry.carry(dataset, prior).bundle
    else:
        bundle = with_layer_sum(fit_bundle(dataset), store_path)
    published = publish(bundle, artifacts_dir, check=require_servable)
    if held_out_csv is not None and bundle.held_out is not None and prior is None:
        held_out_csv.parent.mkdir(parents=True, exist_ok=True)
        bundle.held_out.to_csv(held_out_csv, index=False)
    return describe_published(published)


def with_layer_sum(bundle: Bundle, store_path: Path) -> Bundle:
    """``bundle`` plus a layer-sum model when every test row of its hardware measured one layer.

    The layer-sum model then answers the test phase; the manifest records why (its grouped-CV
    scores per operator type beside the one-constant J/FLOP baseline on the same folds).
    """
    if "test" not in bundle.phases:
        return bundle
    try:
        frame = layer_frame(store_path, bundle.hardware)
    except FailedPrecondition:
        return bundle
    if len(frame) < bundle.dataset.get("rows", 0):
        return bundle  # some test rows are whole networks: the whole-graph predictors answer
    model, info = fit_layer_sum(frame)
    notes = (*bundle.notes, str(info["why"]))
    return dataclasses.replace(bundle, layer_sum=model, layer_sum_info=info, notes=notes)
