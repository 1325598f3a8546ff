"""The byte budget of one AddMeasurements call: per row field, and for the whole call.

A row's text fields may each hold up to 64 K characters by the row check of the ground
(``joulecast.measurement.MAX_TEXT``: the store takes what the collector and imports write), and
a call may send 20,000 rows: 600 rows of 64 KiB fields were once accepted in 3 s, grew the
server by 330 MB that it kept, and the store by 600 MB. A row sent over the network gets less:
each text field at most ``field_bytes`` (UTF-8), and the whole call (text, graphs, a fixed
overhead per row) at most ``call_bytes``. Past either, the call ends RESOURCE_EXHAUSTED at
once, before more of the stream is read, and nothing of it is stored.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import logging
from dataclasses import dataclass

from joulecast.errors import ResourceLimit
from server.measurements import IncomingRow

logger = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
ROW_OVERHEAD_BYTES = 256
"""Counted per row for its numbers and framing (a row of empty text still costs something)."""
TRIM_AFTER_BYTES = 8 * MiB
"""A call this large hands its freed memory back to the system when it ends (see :func:`trim`)."""


@dataclass(frozen=True)
class RowBudget:
    """Bytes one AddMeasurements call may send: ``field_bytes`` per text field of a row (UTF-8),
    ``call_bytes`` for the whole call."""

    field_bytes: int = 16 * KiB
    call_bytes: int = 64 * MiB


class CallSpending:
    """What one call has sent so far, against its :class:`RowBudget`."""

    def __init__(self, budget: RowBudget) -> None:
        self.budget = budget
        self.spent_bytes = 0

    def spend(self, item: IncomingRow) -> None:
        """Count ``item``; ResourceLimit naming the row and field past the budget."""
        size = ROW_OVERHEAD_BYTES + (len(item.graph) if item.graph is not None else 0)
        for field in dataclasses.fields(item.row):
            value = getattr(item.row, field.name)
            if not isinstance(value, str):
                continue
            n = len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
            if n > self.budget.field_bytes:
                raise ResourceLimit(
                    f"row {item.index}: {field.name} is {n:,} bytes; a row field sent to the "
                    f"server holds at most {self.budget.field_bytes:,} bytes (nothing stored)"
                )
            size += n
        self.spent_bytes += size
        if self.spent_bytes > self.budget.call_bytes:
            raise ResourceLimit(
                f"this call sent more than {self.budget.call_bytes:,} bytes by row {item.index}; "
                "send the rows in smaller calls (nothing stored)"
            )


def _libc_trim() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _libc_trim()


def trim() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``): the strings of a
    large call are freed when it ends, but the allocator keeps their pages for reuse, in arenas
    of the threads that read them, so the server's resident memory stayed at its peak."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)  # type: ignore[operator]
