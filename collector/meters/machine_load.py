"""What else the machine did during a window: the cores kept busy by other processes.

The cpu-time meter counts only its own process's CPU seconds, but those seconds are not
independent of the neighbours: on the project's 2-core VM, a memory-streaming process on the
other core made the same work take 4 to 18 % more CPU time (shared caches and memory bandwidth),
and repeats taken while test suites ran beside the collector spread 3x wider than those of a
calmer campaign. So every cpu-time window records how many cores other work kept busy
(``others_busy_cores``, from the machine's ``/proc/stat`` minus this process's own CPU time):
a row that ran beside heavy work says so, and the repeatability tool can tell the two apart.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_STAT = Path("/proc/stat")
CROWDED_CORES = 0.5
"""Other work keeping at least this many cores busy makes a window *crowded* (warned about)."""


def read_busy_s(stat: Path = PROC_STAT) -> float | None:
    """Machine-wide busy CPU seconds so far, all cores (user, nice, system, irq, softirq,
    steal: everything but idle and iowait), from the first line of ``/proc/stat``; None where
    it cannot be read (not Linux)."""
    try:
        first = stat.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    ticks = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    ticks += [0] * (8 - len(ticks))
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (sum(ticks) - ticks[3] - ticks[4]) / hz


def others_busy_cores(
    start_busy_s: float | None, end_busy_s: float | None, own_cpu_s: float, wall_s: float
) -> float | None:
    """Mean cores kept busy by everything but this process between ``start`` and ``end``.

    ``own_cpu_s`` is this process's CPU seconds over the same span; ``/proc/stat`` counts in
    clock ticks (10 ms), so the figure is rounded to that over the window. None when either
    reading is missing or the span is empty.
    """
    if start_busy_s is None or end_busy_s is None or not wall_s > 0:
        return None
    return max(0.0, (end_busy_s - start_busy_s - own_cpu_s) / wall_s)
