"""Export the measurement store as CSV or Parquet (pandas at this edge only)."""

from __future__ import annotations

from pathlib import Path

from joulecast.errors import InvalidArgument
from joulecast.measurement import ROW_COLUMNS
from joulecast.store import MeasurementStore

# The contract of the CSV: these columns first, in this order (scripts read them by position).
CONTRACT_COLUMNS = (
    "family",
    "num_layers",
    "hidden_size",
    "phase",
    "samples",
    "batch_size",
    "flops_forward",
    "flops_train",
    "params",
    "duration_s",
    "energy_j",
    "energy_source",
    "gpu_util_mean",
    "mem_util_mean",
    "hardware",
)
FORMATS = ("csv", "parquet")


def export_store(
    db: str | Path, out: str | Path, fmt: str = "csv", status: str | None = "ok"
) -> int:
    """Write the store's rows to ``out``; returns the number of rows written."""
    import pandas as pd

    if fmt not in FORMATS:
        raise InvalidArgument(f"format must be one of {FORMATS}, got {fmt!r}")
    with MeasurementStore(db, read_only=True) as store:
        rows = list(store.iter_dicts(status=status))
    rest = [c for c in ROW_COLUMNS if c not in CONTRACT_COLUMNS]
    frame = pd.DataFrame(rows, columns=[*CONTRACT_COLUMNS, *rest])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame)
