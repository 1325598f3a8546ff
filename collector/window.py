"""How many batches a measurement window needs to last a target time (the timed protocol).

A window that lasts a few milliseconds measures the timer, not the work: the timed protocol
chooses, per configuration and phase, a whole number of batches whose window lasts at least
``target_s`` seconds (2 s by default), from the cost of a few warm batches timed just before.
Energy per sample is then the quantity measured; the row records the samples actually used.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from joulecast.errors import InvalidArgument

DEFAULT_WINDOW_S = 2.0
"""Target window length in seconds: long enough to swamp timer and scheduler noise."""
PROBE_S = 0.25
"""Seconds of warm batches timed to estimate the cost of one batch."""
MARGIN = 1.2
"""Batches are chosen for ``MARGIN`` x the target: the first batches after a warm-up are still
slower than later ones (the CPU campaign's windows came out at 0.75-1.2 x the target without it)."""


def batches_for_window(batch_s: float, target_s: float = DEFAULT_WINDOW_S) -> int:
    """Whole batches whose total time reaches ``target_s``, given ``batch_s`` seconds a batch.

    At least one batch: a batch that alone lasts longer than the target is one window.
    """
    if not target_s > 0:
        raise InvalidArgument(f"window target must be > 0 s, got {target_s!r}")
    if not batch_s > 0:
        raise InvalidArgument(f"a batch must take > 0 s, got {batch_s!r}")
    return max(1, math.ceil(target_s / batch_s - 1e-9))


def samples_for_window(
    batch_s: float, batch_size: int, target_s: float = DEFAULT_WINDOW_S
) -> tuple[int, int]:
    """``(batches, samples)`` of a window reaching ``target_s``; samples = batches x batch size."""
    if batch_size < 1:
        raise InvalidArgument(f"batch size must be >= 1, got {batch_size!r}")
    batches = batches_for_window(batch_s, target_s)
    return batches, batches * batch_size


def window_clock(device: str) -> Callable[[], float]:
    """The clock that sizes timed windows: CPU seconds on cpu (steadier than wall time on a
    shared machine), wall seconds on a GPU (the host's CPU time says nothing of the kernels)."""
    return time.perf_counter if device.startswith("cuda") else time.process_time
