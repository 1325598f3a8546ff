"""Which few-shot predictor of a new CPU errs least, calibrated on the four paper families.

A store holding two held-out sets of one CPU (plans ``holdout-cpu`` and ``holdout-cpu-b``: 24
configurations of MLP, CNN, RNN and CRNN that no other plan holds) is split at random into
halves, three configurations of each family to calibrate on (their first repeat only, as a
one-repeat suite would measure them) and the other twelve to score. Per split, four predictors:

- ``prior``: the served predictor of another CPU (``--artifacts``) as it is;
- ``carried``: that predictor carried by the half (``estimator.carry``, as ``calibrate`` does);
- ``alone``: a roofline fitted on the half alone;
- ``pooled xK``: a roofline fitted on the prior's own store (``--prior-db``), its energies scaled
  by the half's median ratio to the prior, with the half's rows counted K times.

Prints each split's median errors and their median over splits. Nothing is published.

    PYTHONPATH=. python examples/cpu/compare_calibrations.py \\
        --db artifacts/measurements/cpu-xeon-f6m207.db
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from estimator.carry import carry, choose_prior
from estimator.dataset import aggregate_repeats, from_rows, from_store
from estimator.predictors.base import frame_rows
from estimator.predictors.carried import Carried
from estimator.predictors.physical import RooflineDuration
from joulecast.store import MeasurementStore

FAMILIES = ("mlp", "cnn", "rnn", "crnn")
POOL_WEIGHTS = (3, 10, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="store of both held-out sets")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the prior's")
    parser.add_argument(
        "--prior-db",
        type=Path,
        default=Path("artifacts/measurements/cpu-amd-epyc.db"),
        help="the store the prior was fitted on",
    )
    parser.add_argument("--plans", default="holdout-cpu,holdout-cpu-b")
    parser.add_argument("--splits", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with MeasurementStore(args.db, read_only=True) as store:
        plans = set(args.plans.split(","))
        rows = [r for r in store.rows() if r.plan in plans]
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows if r.graph_sha256}
    hardware = rows[0].hardware
    every = from_rows(rows, graphs, hardware)
    frame = every.frame
    scored = aggregate_repeats(frame)
    first = frame[frame["repeat"] == frame.groupby("config_id")["repeat"].transform("min")]
    prior = choose_prior(args.artifacts, exclude=hardware)
    if prior is None:
        raise SystemExit(f"{args.artifacts} serves no CPU predictor to carry")
    prior_store = from_store(args.prior_db, prior.bundle.hardware).frame
    configs = sorted(scored["config_id"].unique())
    rng = np.random.default_rng(args.seed)
    names = ("prior", "carried", "alone", *(f"pooled x{k}" for k in POOL_WEIGHTS))
    errors: dict[str, list[float]] = {n: [] for n in names}
    print(f"{hardware}: {len(configs)} configurations; prior {prior.bundle.hardware}")
    for split in range(args.splits):
        chosen = [
            c
            for family in FAMILIES
            for c in rng.choice([c for c in configs if c.startswith(family + "-")], 3, False)
        ]
        half = replace(every, frame=first[first["config_id"].isin(chosen)])
        cal = aggregate_repeats(half.frame)
        held = scored[~scored["config_id"].isin(chosen)]
        measured = held["energy_per_sample_j"].to_numpy(float)
        done = carry(half, prior)
        model = done.bundle.predictors[Carried.name]
        assert isinstance(model, Carried)
        answers = {
            "prior": _answers(lambda r, m=model: m.inner_[r.phase].predict_row(r), held),
            "carried": _answers(model.predict_row, held),
            "alone": _answers(_roofline(cal).predict_row, held),
        }
        base = float(np.median(np.log(done.held_out["measured_j"] / done.held_out["prior_j"])))
        scaled = prior_store.copy()
        for column in ("energy_per_sample_j", "energy_j", "duration_s"):
            scaled[column] = scaled[column] * np.exp(base)
        for k in POOL_WEIGHTS:
            pooled = _roofline(pd.concat([scaled, *[cal] * k], ignore_index=True))
            answers[f"pooled x{k}"] = _answers(pooled.predict_row, held)
        for name, predicted in answers.items():
            errors[name].append(float(np.median(np.abs(predicted / measured - 1))))
        print(f"split {split:2}: " + ", ".join(f"{n} {errors[n][-1]:.1%}" for n in names))
    print("median over splits: " + ", ".join(f"{n} {np.median(errors[n]):.1%}" for n in names))


def _roofline(frame: pd.DataFrame) -> RooflineDuration:
    return RooflineDuration().fit(frame, frame["energy_per_sample_j"].to_numpy(float))


def _answers(predict: object, frame: pd.DataFrame) -> np.ndarray:
    return np.array([predict(r) for r in frame_rows(frame)])  # type: ignore[operator]


if __name__ == "__main__":
    main()
