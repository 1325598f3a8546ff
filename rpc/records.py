"""Domain records that both ends of a call speak (never protobuf)."""

from __future__ import annotations

from dataclasses import dataclass

ALREADY_STORED = "is already stored"
"""The end of the reason AddMeasurements gives a row whose run key the server holds: sending a
store again after a partial failure is safe, and the client says so once, not per row."""


@dataclass(frozen=True)
class RowVerdict:
    """Whether one row sent to AddMeasurements was committed; ``reason`` says why not."""

    index: int
    run_key: str
    accepted: bool
    reason: str = ""

    @property
    def already_stored(self) -> bool:
        return not self.accepted and self.reason.endswith(ALREADY_STORED)
