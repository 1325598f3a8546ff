"""``joulecast predict --batch-sizes ... --power-limits ...``: one answer per batch size and
power limit, and the energy-cheapest of them marked.

Zeus finds the energy-optimal batch size and power limit by trying them during training; with
a predictor the same decision can be made before the first step. Each row is one prediction
(the server caches the graph's profile, so the rows cost one profile and N predictor calls).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from client.results import PredictionReply
from joulecast.errors import InvalidArgument

MAX_ROWS = 256
"""Most (batch size, power limit) pairs in one sweep."""


@dataclass(frozen=True)
class SweepRow:
    batch_size: int
    power_limit_w: float | None
    """None: the board's default (no --power-limits given)."""
    reply: PredictionReply

    def as_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "power_limit_w": self.reply.power_limit_w,
            **{
                k: v
                for k, v in self.reply.as_dict().items()
                if k
                in ("train", "test", "tier", "precision", "energy_source", "energy_is_estimate")
            },
            "warnings": list(self.reply.warnings),
        }


def parse_list(text: str | None, kind: type, name: str) -> list[Any]:
    """``"8,32,128"`` -> ``[8, 32, 128]``; InvalidArgument naming the flag on a bad item."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        values = [kind(item) for item in items]
    except ValueError:
        raise InvalidArgument(f"{name} takes a comma list of numbers, got {text!r}") from None
    if not values:
        raise InvalidArgument(f"{name} is empty")
    return values


def sweep(
    predict: Callable[..., PredictionReply],
    batch_sizes: Sequence[int],
    power_limits: Sequence[float | None],
) -> list[SweepRow]:
    """``predict(batch_size=..., power_limit_w=...)`` for every pair, in order."""
    pairs = [(b, pl) for b in batch_sizes for pl in (power_limits or [None])]
    if len(pairs) > MAX_ROWS:
        raise InvalidArgument(f"{len(pairs)} pairs asked; at most {MAX_ROWS} in one sweep")
    return [SweepRow(b, pl, predict(batch_size=b, power_limit_w=pl)) for b, pl in pairs]


def cheapest(rows: Sequence[SweepRow], phase: str = "train") -> SweepRow | None:
    """The row of least ``phase`` energy, None when no row answers that phase."""
    answered = [r for r in rows if r.reply.phase(phase) is not None]
    if not answered:
        return None
    return min(answered, key=lambda r: r.reply.phase(phase).energy_j)  # type: ignore[union-attr]


TIE_REL = 1e-3
"""Energies closer than this (relative) are the same answer."""


def same_as_cheapest(rows: Sequence[SweepRow], best: SweepRow, phase: str = "train") -> list[float]:
    """The other power limits at ``best``'s batch size that cost the same energy: a limit
    above what the board draws changes nothing, so the cheapest limit is then any of them."""
    energy = best.reply.phase(phase).energy_j  # type: ignore[union-attr]
    return [
        r.reply.power_limit_w
        for r in rows
        if r is not best
        and r.batch_size == best.batch_size
        and r.reply.power_limit_w is not None
        and (est := r.reply.phase(phase)) is not None
        and abs(est.energy_j - energy) <= TIE_REL * energy
    ]


def _j(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def format_sweep(rows: Sequence[SweepRow], phase: str = "train") -> str:
    best = cheapest(rows, phase)
    first = rows[0].reply if rows else None
    lines = []
    if first is not None:
        # "measured" is left out, as in the single answer's table: beside rows whose energy was
        # estimated it would read as a contradiction (the source line says what the rows are)
        what = [first.tier] if first.tier != "measured" else []
        what += [] if first.precision in (None, "fp32") else [str(first.precision)]
        lines.append(
            f"hardware {first.hardware}"
            + (f" ({', '.join(what)})" if what else "")
            + f", {phase} energy per run; energy source {first.energy_source}"
        )
        if any(row.reply.energy_is_estimate for row in rows):
            lines.append(
                "ESTIMATED: the predictor learned from estimated energy (no power meter), not "
                "from measurements"
            )
    header = (
        f"  {'batch':>6} {'limit W':>8} {'energy (J)':>12} {'interval (J)':>24} "
        f"{'duration (s)':>13} {'power (W)':>10}"
    )
    lines += [header, "-" * len(header)]
    for row in rows:
        est = row.reply.phase(phase)
        mark = "*" if row is best else " "
        limit = row.reply.power_limit_w
        limit_text = "-" if limit is None else f"{limit:g}"
        if est is None:
            lines.append(f"{mark} {row.batch_size:>6} {limit_text:>8} {'unavailable':>12}")
            continue
        interval = f"[{_j(est.energy_low_j)}, {_j(est.energy_high_j)}]"
        duration = "n/a" if est.duration_s is None else f"{est.duration_s:,.1f}"
        power = "n/a" if est.power_w is None else f"{est.power_w:.0f}"
        lines.append(
            f"{mark} {row.batch_size:>6} {limit_text:>8} {_j(est.energy_j):>12} {interval:>24} "
            f"{duration:>13} {power:>10}"
        )
    if best is not None:
        limit = best.reply.power_limit_w
        tied = same_as_cheapest(rows, best, phase)
        lines.append(
            f"* least {phase} energy: batch {best.batch_size}"
            + ("" if limit is None else f", {limit:g} W")
            + (
                f" (the same at {', '.join(f'{t:g}' for t in tied)} W: the board draws less "
                "than each limit)"
                if tied
                else ""
            )
        )
    warnings = dict.fromkeys(w for row in rows for w in row.reply.warnings)
    if warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in warnings]
    return "\n".join(lines)
