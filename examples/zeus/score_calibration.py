"""Score few-shot calibration on the Zeus rows: leave one GPU out, calibrate on a few of its rows.

    PYTHONPATH=. python examples/zeus/score_calibration.py
    PYTHONPATH=. python examples/zeus/score_calibration.py --db runs/quadro-rtx6000.db  # + EC-NAS
    PYTHONPATH=. python examples/zeus/score_calibration.py --h200 OUT/measurements.db \
        --h200-suite OUT/calibrate.db  # after make gpu-calibrate-check on a lent GPU

For each GPU of the Zeus store in turn, the transfer model is fitted on the other GPUs' rows
(Sentiment140 left out of every fit, as in the published model: its work per sample is unknown;
an EC-NAS store given with ``--db`` joins the fit unless its GPU is the one held out) with its
leave-one-GPU-out and leave-one-workload-out bands sized on those rows alone: that is the prior
and the zero-shot answer. The held-out GPU is then calibrated exactly as ``joulecast calibrate``
and ``joulecast fit`` do (:func:`estimator.transfer.fewshot.calibrate`, the bands of
:func:`estimator.transfer.calibrated.build`) on:

- **one workload**: at most 6 rows of ONE workload (at the board's highest power limit, batch
  sizes spread from least to most), scored on the GPU's five other workloads, once per workload;
- **spanning**: 2 (then 3) rows of EVERY workload chosen the same way, scored on the GPU's other
  rows (other batch sizes and power limits of the same workloads).

With ``--h200 artifacts/measurements/h200.db`` it also calibrates the published transfer model
(which never saw the H200) on the H200 sweep's rows of the configurations closest to
``joulecast calibrate``'s suite (batch 8 only: that sweep has no other), and scores it on the
sweep's other configurations, both phases.

Printed per GPU and protocol: median APE of energy per epoch, zero-shot beside calibrated, and
the share of scored rows inside the served 90 % interval with its median width (high/low). The
rows that score a calibration never choose anything: the prior width is chosen on the
calibration rows alone (leave one configuration out), and the row choice is fixed in advance.
"""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from estimator.transfer import calibrated, fewshot
from estimator.transfer.answer import band
from estimator.transfer.artifact import TransferModel
from estimator.transfer.cli import _lookup
from estimator.transfer.data import from_stores
from estimator.transfer.evaluate import cross_validate
from estimator.transfer.fit import fit_params, log_errors
from estimator.transfer.train import _band
from joulecast.measurement import PHASES

REPO = Path(__file__).resolve().parents[2]
ZEUS = REPO / "artifacts" / "measurements" / "zeus-nsdi23.db"
SENTIMENT = "zeus/sentiment140/bert_base_uncased/adamw"
ONE_WORKLOAD_ROWS = 6


def _before_after(zero: tuple, calibrated: tuple) -> dict[str, float]:
    """(APE, coverage, width) of the uncalibrated and the calibrated answer, side by side."""
    return {
        f"{who}_{what}": value
        for what, pair in zip(
            ("ape", "cov", "width"), zip(zero, calibrated, strict=True), strict=False
        )
        for who, value in zip(("zero", "cal"), pair, strict=True)
    }


def spread(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows at the board's highest power limit, batch sizes spread from least to most."""
    top = rows[rows["power_limit_w"] == rows["power_limit_w"].max()].sort_values("batch_size")
    picks = np.unique(np.linspace(0, len(top) - 1, min(n, len(top))).round().astype(int))
    return top.iloc[picks]


def prior_for(frame: pd.DataFrame, held_out: str) -> TransferModel:
    """The transfer model fitted without ``held_out`` (nor Sentiment140), bands from its rows."""
    rows = frame[(frame["hardware"] != held_out) & (frame["workload"] != SENTIMENT)]
    rows = rows.reset_index(drop=True)
    bands = {s: _band(cross_validate(rows, s, inner=False)) for s in ("logo", "lowo")}
    fitted_on = {"gpus": sorted(rows["hardware"].unique())}
    return TransferModel(fit_params(rows), bands, fitted_on=fitted_on)


def score(
    answer_j: np.ndarray, low: float, high: float, measured: pd.Series
) -> tuple[float, float, float]:
    """(median APE, share inside the interval, its width) of answers with the band (low, high)."""
    measured = measured.to_numpy(float)
    ape = float(np.median(np.abs(answer_j / measured - 1)))
    inside = (answer_j * np.exp(-high) <= measured) & (measured <= answer_j * np.exp(-low))
    return ape, float(inside.mean()), float(np.exp(high - low))


def calibrated_vs_zero(
    prior: TransferModel, gpu: str, cal: pd.DataFrame, scored: pd.DataFrame
) -> dict[str, float]:
    fit = fewshot.calibrate(cal, prior.params)
    model = calibrated.build(fit, prior, hardware=gpu, gpu=gpu)
    zero = log_errors(prior.params, scored)["energy_j"].to_numpy(float)
    after = log_errors(fit.params, scored)["energy_j"].to_numpy(float)
    z = score(zero, *band(prior, gpu_measured=False), scored["energy_j"])
    c = score(after, *model.bands["train"], scored["energy_j"])
    return {
        "rows": len(cal),
        "sigma": fit.sigma,
        **_before_after(z, c),
    }


def run(frame: pd.DataFrame, gpus: list[str]) -> pd.DataFrame:
    out: list[dict[str, object]] = []
    for gpu in gpus:
        prior = prior_for(frame, gpu)
        # The held-out GPU is scored on its Zeus rows (its EC-NAS cells, if given, are neither
        # fitted nor scored: the protocol is the Zeus one).
        rows = frame[(frame["hardware"] == gpu) & frame["plan"].str.startswith("zeus")]
        for workload, part in rows.groupby("workload"):
            cal = spread(part, ONE_WORKLOAD_ROWS)
            scored = rows[rows["workload"] != workload]
            for scope, target in (
                ("all", scored),
                ("no-s140", scored[scored.workload != SENTIMENT]),
            ):
                out.append(
                    {
                        "gpu": gpu,
                        "protocol": "one workload",
                        "scored": scope,
                        "calibrated_on": str(workload).split("/")[1],
                        **calibrated_vs_zero(prior, gpu, cal, target),
                    }
                )
        for n in (2, 3):
            for scope in ("all", "no-s140"):
                pool = rows if scope == "all" else rows[rows["workload"] != SENTIMENT]
                cal = pd.concat([spread(part, n) for _, part in pool.groupby("workload")])
                out.append(
                    {
                        "gpu": gpu,
                        "protocol": f"spanning {n}/workload",
                        "scored": scope,
                        "calibrated_on": "every workload",
                        **calibrated_vs_zero(prior, gpu, cal, pool.drop(cal.index)),
                    }
                )
    return pd.DataFrame(out)


H200_SUITE = ("mlp-n4-h4096", "mlp-n1-h512", "cnn-n2-h128", "rnn-n2-h2048", "crnn-n1,1-h64,64")
"""The paper sweep's configurations nearest the calibration suite (it has no GRU over frames,
no transformer and no batch size but 8)."""


def h200_exam(db: Path, suite_db: Path | None = None) -> pd.DataFrame:
    """The published model calibrated on a GPU's rows, scored on its sweep (both phases).

    Without ``suite_db`` the calibration rows are the sweep's configurations nearest the suite
    (:data:`H200_SUITE`), scored on the others; with it, the rows of ``joulecast calibrate``'s
    suite measured on that GPU (its store), scored on every row of the sweep, as a user would
    calibrate and then ask."""
    from estimator.transfer import artifact

    prior = artifact.load(REPO / "artifacts")
    assert prior is not None
    frame = from_stores([db], _lookup).frame
    gpus = sorted(frame["hardware"].unique())
    if len(gpus) != 1:
        raise SystemExit(f"{db} holds rows of {gpus}: one GPU's sweep is scored at a time")
    if suite_db is None:
        cal = frame[frame["config_id"].isin(H200_SUITE)]
        scored = frame[~frame["config_id"].isin(H200_SUITE)]
    else:
        cal, scored = from_stores([suite_db], _lookup).frame, frame
        if set(cal["hardware"]) != set(gpus):
            raise SystemExit(
                f"the suite in {suite_db} was measured on {sorted(set(cal['hardware']))}, the "
                f"sweep on {gpus}: name both with the same --hardware"
            )
    fit = fewshot.calibrate(cal, prior.params)
    model = calibrated.build(fit, prior, hardware=gpus[0], gpu=gpus[0])
    out = []
    for phase in PHASES:
        part = scored[scored["phase"] == phase]
        zero = log_errors(prior.params, part)["energy_j"].to_numpy(float)
        after = log_errors(fit.params, part)["energy_j"].to_numpy(float)
        z = score(zero, *band(prior, gpu_measured=False), part["energy_j"])
        c = score(after, *model.bands.get(phase, (np.nan, np.nan)), part["energy_j"])
        out.append(
            {
                "phase": phase,
                "rows": len(cal[cal["phase"] == phase]),
                "sigma": fit.sigma,
                "scored": len(part),
                **_before_after(z, c),
            }
        )
    return pd.DataFrame(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zeus", type=Path, default=ZEUS, help="the Zeus store")
    parser.add_argument("--db", type=Path, action="append", default=[], help="more GPU rows")
    parser.add_argument("--csv", type=Path, help="write every case's figures here")
    parser.add_argument("--h200", type=Path, help="the H200 sweep's store, calibrated too")
    parser.add_argument(
        "--h200-suite",
        type=Path,
        help="the store of joulecast calibrate's suite measured on that GPU the same day: the "
        "calibration rests on it, and every row of --h200 is scored",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    frame = from_stores([args.zeus, *args.db], _lookup, phases=("train",)).frame
    gpus = sorted(from_stores([args.zeus], _lookup, phases=("train",)).frame["hardware"].unique())
    table = run(frame, gpus)
    if args.csv:
        table.to_csv(args.csv, index=False)
    pd.set_option("display.width", 160)
    cols = ["zero_ape", "cal_ape", "zero_cov", "cal_cov", "zero_width", "cal_width"]
    one = table[table["protocol"] == "one workload"]
    print("\nONE workload (<= 6 rows), scored on the GPU's other workloads: median over the six")
    print("choices of workload of each case's figure")
    print(one.groupby(["scored", "gpu"])[cols].median().round(3).to_string())
    print("\nper choice of workload (scored: all other workloads)")
    shown = one[one["scored"] == "all"][["gpu", "calibrated_on", "rows", "sigma", *cols]]
    print(shown.round(3).to_string(index=False))
    span = table[table["protocol"] != "one workload"]
    print("\nSPANNING: rows of every workload, scored on the GPU's other rows")
    print(
        span[["gpu", "protocol", "scored", "rows", "sigma", *cols]].round(3).to_string(index=False)
    )
    if args.h200 and args.h200_suite:
        print(f"\nthe published model calibrated on the suite in {args.h200_suite}, scored on")
        print(f"every row of {args.h200} (the test answer is scored, not served)")
        print(h200_exam(args.h200, args.h200_suite).round(3).to_string(index=False))
    elif args.h200:
        print("\nH200: the published model calibrated on 5 configurations of its sweep (batch 8),")
        print("scored on the other 38 (its zero-shot test answer is not served, only scored)")
        print(h200_exam(args.h200).round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
