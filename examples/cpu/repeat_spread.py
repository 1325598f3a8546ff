"""How much one machine's measurement of the same work moves: within a run and between runs.

For each store: the spread (coefficient of variation) of the repeats of each configuration-
phase, which a run interleaves minutes apart. For the two stores together: the ratio of each
configuration-phase that both hold (same plan, configuration, phase and batch size), mean of
its repeats in the second over the first. A predictor cannot be scored more finely than this.

    PYTHONPATH=. python examples/cpu/repeat_spread.py \\
        artifacts/measurements/cpu-xeon-f6m207.db artifacts/measurements/cpu-xeon-f6m207-reruns.db
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from joulecast.store import MeasurementStore

KEY = ["plan", "config_id", "phase", "batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stores", type=Path, nargs="+", help="one or two stores")
    args = parser.parse_args()
    means = []
    for path in args.stores:
        frame = _per_sample(path)
        spread = frame.groupby(KEY)["j"].agg(["std", "mean", "size"])
        spread = spread[spread["size"] > 1]
        cv = spread["std"] / spread["mean"]
        print(
            f"{path}: {len(frame)} rows; repeats of {len(cv)} configuration-phases spread by "
            f"{cv.median():.1%} (median coefficient of variation; largest {cv.max():.1%})"
        )
        means.append(frame.groupby(KEY)["j"].mean())
    if len(means) == 2:
        both = pd.concat(means, axis=1, keys=["first", "second"]).dropna()
        for plan, part in both.groupby(level="plan"):
            ratio = part["second"] / part["first"]
            print(
                f"plan {plan}: {len(ratio)} configuration-phases in both; second / first "
                f"median x{ratio.median():.2f}, median |log| {np.median(np.abs(np.log(ratio))):.3f}, "
                f"x{ratio.min():.2f}..x{ratio.max():.2f}"
            )


def _per_sample(path: Path) -> pd.DataFrame:
    with MeasurementStore(path, read_only=True) as store:
        rows = store.rows()
    return pd.DataFrame(
        {
            "plan": r.plan,
            "config_id": r.config_id,
            "phase": r.phase,
            "batch_size": r.batch_size,
            "j": r.energy_j / (r.samples * r.epochs),
        }
        for r in rows
        if r.energy_j
    )


if __name__ == "__main__":
    main()
