"""Score a CPU calibration on configurations it never saw.

``joulecast calibrate --device cpu`` carries the served predictor of another CPU to this one
(``estimator.carry``). This script answers every configuration-phase of a held-out store (e.g.
``joulecast collect --plan collector/plans/holdout-cpu.json --meter cpu-time --window-seconds 2
--repeats 3 --hardware <the calibrated id>``: twelve configurations of the four families that
no plan holds) with the calibrated predictor and with its prior as it is, and prints the median
error of each, and how many measurements fall inside the served 90 % interval.

    PYTHONPATH=. python examples/cpu/score_carry.py --artifacts artifacts \\
        --hardware cpu-epyc-f26m2 --db runs/holdout-cpu.db
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from estimator.artifacts import load_current
from estimator.dataset import aggregate_repeats, from_store
from estimator.predictors.base import frame_rows
from estimator.predictors.carried import Carried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--hardware", required=True, help="the calibrated (carried) hardware id")
    parser.add_argument("--db", type=Path, required=True, help="store of held-out measurements")
    args = parser.parse_args()

    published = load_current(args.artifacts, args.hardware)
    bundle = published.bundle
    model = bundle.predictors.get(Carried.name)
    if not isinstance(model, Carried):
        raise SystemExit(f"{args.hardware} is not a carried (calibrated) CPU predictor")
    prior = bundle.dataset["prior"]
    frame = aggregate_repeats(from_store(args.db, args.hardware).frame)
    rows = frame_rows(frame)
    measured = frame["energy_per_sample_j"].to_numpy(float)
    carried = np.array([model.predict_row(r) for r in rows])
    before = np.array([model.inner_[r.phase].predict_row(r) for r in rows])
    q = np.array([bundle.q_log[r.phase][Carried.name] for r in rows])
    inside = np.abs(np.log(carried / measured)) <= q
    print(
        f"{args.hardware} (version {published.version}), carried from {prior['hardware']} "
        f"(version {prior['version']}); {len(frame)} held-out configuration-phases of {args.db}"
    )
    print(f"{'configuration':24} {'phase':5} {'batch':>5} {'measured mJ':>11} "
          f"{'prior':>7} {'carried':>7} {'inside':>6}")  # fmt: skip
    for i, row in enumerate(frame.itertuples()):
        print(
            f"{row.config_id:24} {row.phase:5} {row.batch_size:>5} {1000 * measured[i]:>11.3g} "
            f"{before[i] / measured[i]:>6.2f}x {carried[i] / measured[i]:>6.2f}x "
            f"{'yes' if inside[i] else 'no':>6}"
        )
    for phase in ("train", "test", None):
        part = np.ones(len(frame), bool) if phase is None else (frame["phase"] == phase).to_numpy()
        print(
            f"{phase or 'all':5}: median error carried {_ape(carried, measured, part):.1%}, "
            f"prior as it is {_ape(before, measured, part):.1%}; {int(inside[part].sum())} of "
            f"{int(part.sum())} inside the 90 % interval (x{math.exp(2 * q[part].max()):.1f})"
        )


def _ape(predicted: np.ndarray, measured: np.ndarray, part: np.ndarray) -> float:
    return float(np.median(np.abs(predicted[part] / measured[part] - 1)))


if __name__ == "__main__":
    main()
