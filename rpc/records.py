"""Domain records that both ends of a call speak (never protobuf)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowVerdict:
    """Whether one row sent to AddMeasurements was committed; ``reason`` says why not."""

    index: int
    run_key: str
    accepted: bool
    reason: str = ""
