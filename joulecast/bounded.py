"""How many warnings an answer carries and how long each may be.

One bound for every source and transport: a profile is cached and sent, so its size must not
grow with the graph, and a question answered in process must say exactly what the server says.
Bounding is idempotent, so a transport may bound again what a source already bounded.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_WARNINGS = 20
MAX_WARNING_CHARS = 300


def bounded_warnings(warnings: Sequence[str]) -> tuple[str, ...]:
    """At most :data:`MAX_WARNINGS` warnings (the last says how many more there were) of at
    most :data:`MAX_WARNING_CHARS` characters each."""
    out = [
        w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 3] + "..." for w in warnings
    ]
    if len(out) > MAX_WARNINGS:
        extra = len(out) - (MAX_WARNINGS - 1)
        out = [*out[: MAX_WARNINGS - 1], f"... and {extra} more warning(s)"]
    return tuple(out)
