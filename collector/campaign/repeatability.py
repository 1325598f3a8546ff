"""``python -m collector.campaign.repeatability DB [DB ...]``: how repeatable a campaign is.

Prints, per configuration-phase (at one batch size and sample count), the coefficient of variation between repeats of energy per
sample (the meter's), of wall time per sample and of CodeCarbon's energy per sample when it ran
alongside, the window's CPU seconds (cpu-time meter) and wall seconds, and the most cores other
work kept busy during any of its windows (``others_busy_cores``, recorded by the cpu-time meter
since 29 November 2026; empty for older rows); then the medians over configuration-phases
measured at least twice (the target is a median CV <= 5 %), and the same split into
quiet (other work below 0.5 core in every window) and crowded configuration-phases where the
figure was recorded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from collector.meters.machine_load import CROWDED_CORES
from joulecast.errors import NotFound
from joulecast.store import MeasurementStore

REPEAT_KEYS = ("plan", "config_id", "variant", "phase", "batch_size", "samples")
"""What makes rows repeats of one measurement: the same configuration-phase at the same batch
size and sample count (a dataset-size sweep's 8 and 64 clips are two measurements, not two
repeats)."""


def repeat_table(paths: list[str]) -> pd.DataFrame:
    """One row per configuration-phase: repeats, CVs (fractions), median window seconds."""
    frames = []
    for path in paths:
        if not Path(path).is_file():
            raise NotFound(f"no measurement store at {path}")
        # read-only: no -wal or -shm next to a store it only reads, and columns of any schema
        with MeasurementStore(path, read_only=True) as store:
            frames.append(pd.DataFrame(store.iter_dicts(status="ok")))
    rows = pd.concat(frames, ignore_index=True)
    rows["cpu_s"] = rows["cpu_s"].astype(float)
    rows["others_busy"] = rows["others_busy_cores"].astype(float)
    rows["energy_per_sample"] = rows["energy_j"] / rows["samples"]
    rows["wall_per_sample"] = rows["duration_s"] / rows["samples"]
    rows["codecarbon_per_sample"] = rows["codecarbon_energy_j"] / rows["samples"]
    grouped = rows.groupby(list(REPEAT_KEYS))

    def cv(column: str) -> pd.Series:
        return grouped[column].std() / grouped[column].mean()

    return pd.DataFrame(
        {
            "repeats": grouped.size(),
            "cv_energy": cv("energy_per_sample"),
            "cv_wall": cv("wall_per_sample"),
            "cv_codecarbon": cv("codecarbon_per_sample"),
            "window_cpu_s": grouped["cpu_s"].median(),
            "window_wall_s": grouped["duration_s"].median(),
            "others_busy_cores": grouped["others_busy"].max(),
        }
    )


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths or any(p in ("-h", "--help") for p in paths):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        table = repeat_table(paths)
    except NotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    with pd.option_context("display.width", 160, "display.max_rows", 500):
        print(table.round(3))
    repeated = table[table["repeats"] >= 2]
    print(f"{len(table)} configuration-phases, {len(repeated)} measured at least twice")
    if not repeated.empty:
        for column in ("cv_energy", "cv_wall", "cv_codecarbon"):
            print(f"median {column}: {100 * repeated[column].median():.1f} %")
        recorded = repeated[repeated["others_busy_cores"].notna()]
        quiet = recorded["others_busy_cores"] < CROWDED_CORES
        for label, part in (("quiet", recorded[quiet]), ("crowded", recorded[~quiet])):
            if not part.empty:
                print(
                    f"median cv_energy, {label} ({len(part)} configuration-phases, other work "
                    f"{'below' if label == 'quiet' else 'at or above'} {CROWDED_CORES:g} core "
                    f"in {'every' if label == 'quiet' else 'some'} window): "
                    f"{100 * part['cv_energy'].median():.1f} %"
                )
    print(
        f"window CPU s: median {table['window_cpu_s'].median():.2f}, "
        f"min {table['window_cpu_s'].min():.2f}; wall s: median "
        f"{table['window_wall_s'].median():.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
