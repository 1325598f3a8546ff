"""Summarise a store imported from the Zeus NSDI '23 traces: sanity figures and a small CSV.

    joulecast import /work/shared/external/zeus-nsdi23 --db runs/zeus.db
    python examples/zeus/summarize.py --db runs/zeus.db \
        --csv artifacts/measurements/zeus-nsdi23.csv

Per GPU: the rows, the range of average power and of power limits, the rows whose average power
exceeds their limit. Per GPU and workload: how the energy of an epoch moves with the power limit
(the energy-optimal limit's saving against the highest limit, and the time it costs; medians
over batch sizes) and with the batch size (at the highest limit: the smallest batch's energy
against the best batch's).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path
from statistics import median

from joulecast.measurement import WORK_AND_COST_COLUMNS, Row
from joulecast.store import MeasurementStore

COLUMNS = (
    "hardware",
    "config_id",
    "variant",
    "family",
    *WORK_AND_COST_COLUMNS,
    "power_limit_w",
    "energy_source",
    "device_name",
    "graph_sha256",
)


def workload(row: Row) -> str:
    """``dataset/network`` of a row's ``zeus/<dataset>/<network>/...`` configuration."""
    return "/".join(row.config_id.split("/")[1:3])


def power_table(rows: list[Row]) -> list[str]:
    by_hw: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        by_hw[r.hardware].append(r)
    lines = ["| hardware | rows | average power (W) | power limits (W) | above the limit |"]
    lines.append("|---|---|---|---|---|")
    for hw, rs in sorted(by_hw.items()):
        powers = [r.power_mean_w or 0.0 for r in rs]
        limits = [r.power_limit_w or 0.0 for r in rs]
        above = [p / lim - 1 for p, lim in zip(powers, limits, strict=True) if p > lim]
        worst = f" (up to +{max(above):.1%})" if above else ""
        lines.append(
            f"| {hw} | {len(rs)} | {min(powers):.1f}-{max(powers):.1f} | "
            f"{min(limits):g}-{max(limits):g} | {len(above)}{worst} |"
        )
    return lines


def limit_and_batch_table(rows: list[Row]) -> list[str]:
    groups: dict[tuple[str, str, int, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.hardware, workload(r), r.batch_size, r.variant)].append(r)
    saving: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    at_top: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for (hw, wl, batch, _), rs in sorted(groups.items()):
        top = max(rs, key=lambda r: r.power_limit_w or 0.0)
        best = min(rs, key=lambda r: r.energy_j or 0.0)
        assert top.energy_j and best.energy_j and top.duration_s and best.duration_s
        saving[(hw, wl)].append(
            (
                1 - best.energy_j / top.energy_j,
                best.duration_s / top.duration_s - 1,
                best.power_limit_w or 0.0,
            )
        )
        at_top[(hw, wl)].setdefault(batch, top.energy_j)
    lines = [
        "| hardware | workload | best limit saves (median, max) | at a time cost of (median) "
        "| best limit (median W) | energy per epoch, smallest batch / best batch (highest limit) |"
    ]
    lines.append("|---|---|---|---|---|---|")
    for key in sorted(saving):
        s = saving[key]
        energies = at_top[key]
        best_batch = min(energies, key=energies.__getitem__)
        smallest = min(energies)
        lines.append(
            f"| {key[0]} | {key[1]} | {median(x[0] for x in s):.0%}, {max(x[0] for x in s):.0%} "
            f"| {median(x[1] for x in s):+.0%} | {median(x[2] for x in s):g} "
            f"| {energies[smallest] / energies[best_batch]:.1f}x (b{smallest} vs b{best_batch}) |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--csv", type=Path, help="write the rows' main columns here")
    args = parser.parse_args()
    with MeasurementStore(args.db, read_only=True) as store:
        rows = [r for r in store.rows() if r.plan == "zeus-nsdi23"]
    print("\n".join(power_table(rows)))
    print()
    print("\n".join(limit_and_batch_table(rows)))
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with args.csv.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for r in sorted(rows, key=lambda r: (r.hardware, r.config_id)):
                writer.writerow(getattr(r, c) for c in COLUMNS)
        print(f"\nwrote {len(rows)} rows to {args.csv}")


if __name__ == "__main__":
    main()
