"""The records of an AddMeasurements stream: an incoming row and the verdict on it.

What makes a row valid is defined once, in :func:`joulecast.measurement.check_row`; the server
adds only that a successful row's graph must be one the profiler can read (the estimator
featurizes every row from its graph).
"""

from __future__ import annotations

from dataclasses import dataclass

from joulecast.measurement import Row


@dataclass(frozen=True)
class IncomingRow:
    """One row of an AddMeasurements stream. ``graph`` is ``None`` when the row names its
    graph by ``row.graph_sha256`` only (sent earlier in the stream, or already stored)."""

    index: int
    row: Row
    graph: bytes | None
