"""The time at which a cumulative energy counter was read.

A window's energy is a counter's difference between two reads, its duration a clock's: the two
must span the same interval, or the power (energy over duration) is off by their mismatch. So a
read is stamped at the midpoint of the clock reads around it, and a read whose clock reads lie
further apart than :data:`TIGHT_READ_S` (the thread was paused during it) is tried again, the
tightest kept. Taking the time on one side only let a paused thread shorten the energy interval
against the duration: a 16 ms window of an idle 10 W board once read 7.5 W.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TIGHT_READ_S = 0.002
"""A counter read whose surrounding clock reads lie further apart was interrupted: try again."""
READ_TRIES = 3


def stamped_read(read: Callable[[], T], clock: Callable[[], float]) -> tuple[float, T]:
    """``read()`` and the clock time it stands for (the tightest of up to :data:`READ_TRIES`)."""
    best: tuple[float, float, T] | None = None
    for _ in range(READ_TRIES):
        before = clock()
        value = read()
        after = clock()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2, value)
        if after - before <= TIGHT_READ_S:
            break
    assert best is not None
    return best[1], best[2]
