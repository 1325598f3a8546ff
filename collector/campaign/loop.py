"""The single-layer protocol's loop, shared by the experiments that run it.

Getzner et al. measured a layer by running it forward on one fixed batch as many times as fit
in a window that ends at a wall-clock deadline; these experiments do the same, and visit their
items interleaved so that a machine's drift hits every side alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

Item = TypeVar("Item")


def forward_passes(module: Callable[[Any], Any], data: Any, seconds: float) -> int:
    """Forward passes until ``seconds`` of wall time have passed (a ``perf_counter`` deadline,
    whose cost per pass is tens of nanoseconds)."""
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        module(data)
        count += 1
    return count


def interleaved(
    groups: Sequence[Sequence[Item]], rounds: int, seed: int
) -> Iterator[tuple[int, Item]]:
    """(round, item) in measuring order: per round the groups shuffled, and inside each group
    its items shuffled (a group's items are measured close together in time)."""
    for round_no in range(rounds):
        rng = random.Random(seed * 1000 + round_no)
        order = list(groups)
        rng.shuffle(order)
        for group in order:
            items = list(group)
            rng.shuffle(items)
            for item in items:
                yield round_no, item
