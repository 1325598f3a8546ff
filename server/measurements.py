"""Checking incoming measurement rows before they reach the store.

A row is accepted only when it could have come from an honest collector: known phase and
status, positive sizes, finite numbers, an energy source that agrees with its estimate flag,
and, for a successful row, a weightless graph the profiler can read (the estimator featurizes
every row from its graph).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass

from collector.store import Row
from joulecast.errors import InvalidArgument

MAX_TEXT = 64 * 1024
"""Longest text field of a row, in characters (``software`` holds a JSON of versions)."""
MAX_KEY = 512
MAX_COUNT = 10**12
_POSITIVE = ("samples", "batch_size", "epochs")
_REQUIRED_TEXT = ("run_key", "plan", "config_id", "family", "hardware", "device")
_NON_NEGATIVE_FLOATS = (
    "duration_s",
    "energy_j",
    "idle_power_w",
    "power_mean_w",
    "mem_used_mean_mib",
    "codecarbon_energy_j",
)
_PERCENT = ("gpu_util_mean", "mem_util_mean")


@dataclass(frozen=True)
class IncomingRow:
    """One row of an AddMeasurements stream. ``graph`` is ``None`` when the row names its
    graph by ``row.graph_sha256`` only (sent earlier in the stream, or already stored)."""

    index: int
    row: Row
    graph: bytes | None


@dataclass(frozen=True)
class RowVerdict:
    """Whether one row was committed; ``reason`` says why not."""

    index: int
    run_key: str
    accepted: bool
    reason: str = ""


def check_row(row: Row) -> Row:
    """Validate ``row``; return it with ``energy_is_estimate`` filled in from its source.

    Raises :class:`InvalidArgument` naming the first problem.
    """
    for name in _REQUIRED_TEXT:
        if not getattr(row, name):
            raise InvalidArgument(f"{name} is empty")
    if len(row.run_key) > MAX_KEY:
        raise InvalidArgument(f"run_key is longer than {MAX_KEY} characters")
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise InvalidArgument(f"{f.name} is longer than {MAX_TEXT} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(f"{f.name} is not a finite number: {value}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT * 1000:
            raise InvalidArgument(f"{f.name} is out of range: {value}")
    if row.phase not in ("train", "test"):
        raise InvalidArgument(f"phase must be 'train' or 'test', got {row.phase!r}")
    if row.status not in ("ok", "failed"):
        raise InvalidArgument(f"status must be 'ok' or 'failed', got {row.status!r}")
    if row.repeat < 0:
        raise InvalidArgument(f"repeat must be >= 0, got {row.repeat}")
    for name in _POSITIVE:
        value = getattr(row, name)
        if not 1 <= value <= MAX_COUNT:
            raise InvalidArgument(f"{name} must be in [1, {MAX_COUNT}], got {value}")
    for name in _NON_NEGATIVE_FLOATS:
        value = getattr(row, name)
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0, got {value}")
    for name in _PERCENT:
        value = getattr(row, name)
        if value is not None and not 0 <= value <= 100:
            raise InvalidArgument(f"{name} is a percentage in [0, 100], got {value}")
    for name in ("flops_forward", "flops_train", "params"):
        value = getattr(row, name)
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0, got {value}")
    estimate = row.energy_source.startswith("estimate-") if row.energy_source else None
    if (
        row.energy_is_estimate is not None
        and estimate is not None
        and row.energy_is_estimate != estimate
    ):
        raise InvalidArgument(
            f"energy_is_estimate={row.energy_is_estimate} contradicts energy_source "
            f"{row.energy_source!r} (estimates are named estimate-…)"
        )
    if row.status == "ok":
        for name in ("energy_j", "duration_s", "energy_source"):
            if getattr(row, name) is None:
                raise InvalidArgument(f"an 'ok' row needs {name}")
        if row.duration_s is not None and row.duration_s <= 0:
            raise InvalidArgument(f"duration_s must be > 0, got {row.duration_s}")
        if not row.graph_sha256:
            raise InvalidArgument("an 'ok' row needs its weightless graph")
    if estimate is not None and row.energy_is_estimate is None:
        row = dataclasses.replace(row, energy_is_estimate=estimate)
    return row


def graph_sha256(graph: bytes) -> str:
    return hashlib.sha256(graph).hexdigest()
