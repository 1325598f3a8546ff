"""Score a CPU calibration on configurations it never saw.

``joulecast calibrate --device cpu`` carries the served predictor of another CPU to this one
(``estimator.carry``) from the reference suite's rows. This script does the same from a store
holding the suite's rows (plan ``calibrate``) and held-out rows (by default plan
``holdout-cpu``: twelve configurations of the four families that no other plan holds, measured
with ``joulecast collect --plan collector/plans/holdout-cpu.json --meter cpu-time
--window-seconds 2 --repeats 3``; ``--holdout-plan holdout-cpu-b`` scores the second set of twelve
that some stores hold), then answers every held-out configuration-phase with the
carried predictor and with its prior as it is: the median error of each, and how many
measurements fall inside the carried 90 % interval. Nothing is published.

    PYTHONPATH=. python examples/cpu/score_carry.py \\
        --db artifacts/measurements/cpu-epyc-f26m2.db --artifacts artifacts
    # a fresh calibration of this machine against the shipped held-out rows:
    PYTHONPATH=. python examples/cpu/score_carry.py \
        --db artifacts/measurements/cpu-epyc-f26m2.db --suite-db runs/calibrate.db
"""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from estimator.carry import carry, choose_prior
from estimator.dataset import aggregate_repeats, from_rows
from estimator.predictors.base import frame_rows
from estimator.predictors.carried import Carried
from joulecast.measurement import PHASES, Row
from joulecast.store import MeasurementStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="store of suite and held-out rows")
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"), help="the prior's")
    parser.add_argument("--hardware", help="hardware of the rows (default: the store's only one)")
    parser.add_argument(
        "--suite-db",
        type=Path,
        help="store of the suite's rows when they are not in --db (a fresh calibrate's --db)",
    )
    parser.add_argument("--suite-plan", default="calibrate")
    parser.add_argument("--holdout-plan", default="holdout-cpu")
    args = parser.parse_args()

    rows, graphs = _read(args.db, args.hardware)
    hardware = args.hardware or _only({r.hardware for r in rows})
    held = from_rows([r for r in rows if r.plan == args.holdout_plan], graphs, hardware)
    if args.suite_db is not None:
        # Another store's suite (another name for this machine): carried under the held-out
        # rows' hardware name so that both sides are one machine to the scoring.
        rows, graphs = _read(args.suite_db, None)
        rows = [replace(r, hardware=hardware) for r in rows]
    suite = from_rows([r for r in rows if r.plan == args.suite_plan], graphs, hardware)
    prior = choose_prior(args.artifacts, exclude=hardware)
    if prior is None:
        raise SystemExit(f"{args.artifacts} serves no CPU predictor to carry")
    done = carry(suite, prior)
    bundle = done.bundle
    model = bundle.predictors[Carried.name]
    assert isinstance(model, Carried)
    frame = aggregate_repeats(held.frame)
    rows_ = frame_rows(frame)
    measured = frame["energy_per_sample_j"].to_numpy(float)
    carried = np.array([model.predict_row(r) for r in rows_])
    before = np.array([model.inner_[r.phase].predict_row(r) for r in rows_])
    q = np.array([bundle.q_log[r.phase][Carried.name] for r in rows_])
    inside = np.abs(np.log(carried / measured)) <= q
    print(
        f"{hardware}: {prior.bundle.hardware} (version {prior.version}) carried by "
        f"{len(suite.frame)} rows of plan {args.suite_plan}; scored on "
        f"{len(frame)} configuration-phases of plan {args.holdout_plan}"
    )
    print("correction (log):", ", ".join(f"{k} {v:+.3f}" for k, v in model.coef_.items()))
    for phase in PHASES:
        s = bundle.scores.get("loco", {}).get(phase, {}).get(Carried.name)
        if s:
            print(
                f"suite held out by configuration ({phase}): carried {s['median_ape_pct']:.1f} %, "
                f"prior as it is {s['prior_median_ape_pct']:.1f} %"
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


def _read(db: Path, hardware: str | None) -> tuple[list[Row], dict[str, bytes]]:
    with MeasurementStore(db, read_only=True) as store:
        rows = store.rows(hardware=hardware)
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows if r.graph_sha256}
    return rows, graphs


def _only(names: set[str]) -> str:
    if len(names) != 1:
        raise SystemExit(f"the store holds {sorted(names)}: name one with --hardware")
    return names.pop()


def _ape(predicted: np.ndarray, measured: np.ndarray, part: np.ndarray) -> float:
    return float(np.median(np.abs(predicted[part] / measured[part] - 1)))


if __name__ == "__main__":
    main()
