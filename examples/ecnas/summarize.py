"""Summarise the quadro-rtx6000 store built from EC-NAS-Bench: the repeat-noise floor, a CSV.

    python examples/ecnas/summarize.py --db runs/quadro-rtx6000.db \
        --csv artifacts/measurements/quadro-rtx6000.csv

The repeat-noise floor: for every configuration measured at least ``--min-repeats`` times (the
91 architectures of EC-NAS-Bench's 4V9E space, 4 runs each), predict each run by the mean of the
others and take the absolute percentage error. No predictor can be expected to beat this on
held-out rows: it is the measurement's own spread (as a leave-one-out figure it counts the
others' mean's error too, about sqrt(1 + 1/3) = 1.15 x the spread of one run).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from joulecast.measurement import WORK_AND_COST_COLUMNS
from joulecast.store import MeasurementStore

COLUMNS = (
    "config_id",
    "variant",
    "repeat",
    *WORK_AND_COST_COLUMNS,
    "energy_source",
)


def noise_floor(per_sample: dict[str, list[float]], min_repeats: int) -> dict[str, float]:
    errors = []
    configs = 0
    for values in per_sample.values():
        if len(values) < min_repeats:
            continue
        configs += 1
        x = np.asarray(values)
        for i in range(len(x)):
            others = np.delete(x, i).mean()
            errors.append(abs(x[i] - others) / x[i] * 100.0)
    e = np.asarray(errors)
    return {
        "configs": configs,
        "runs": len(e),
        "mape_pct": float(e.mean()) if len(e) else float("nan"),
        "median_ape_pct": float(np.median(e)) if len(e) else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--hardware", default="quadro-rtx6000")
    parser.add_argument("--min-repeats", type=int, default=4)
    parser.add_argument("--csv", type=Path, help="write one line per row (no graphs, no notes)")
    args = parser.parse_args()
    with MeasurementStore(args.db, read_only=True) as store:
        rows = [r for r in store.rows() if r.hardware == args.hardware and r.phase == "train"]
    per_sample: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per_sample[r.config_id].append(r.energy_j / (r.samples * r.epochs))
    floor = noise_floor(per_sample, args.min_repeats)
    epoch_j = np.array([r.energy_j / r.epochs for r in rows])
    power = np.array([r.power_mean_w for r in rows])
    print(f"{len(rows)} train rows, {len(per_sample)} configurations of {args.hardware}")
    print(
        f"energy per epoch (40,000 samples): median {np.median(epoch_j):.0f} J, "
        f"range {epoch_j.min():.0f}-{epoch_j.max():.0f} J; training power median "
        f"{np.median(power):.0f} W (range {power.min():.0f}-{power.max():.0f} W)"
    )
    print(
        f"repeat-noise floor ({floor['configs']} configurations with >= {args.min_repeats} runs, "
        f"{floor['runs']} runs, each predicted by the mean of the others): MAPE "
        f"{floor['mape_pct']:.2f} %, median APE {floor['median_ape_pct']:.2f} %"
    )
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for r in sorted(rows, key=lambda r: (r.config_id, r.variant, r.repeat)):
                writer.writerow(
                    [
                        round(v, 3) if isinstance(v, float) else v
                        for v in (getattr(r, c) for c in COLUMNS)
                    ]
                )
        print(f"wrote {len(rows)} rows to {args.csv}")


if __name__ == "__main__":
    main()
