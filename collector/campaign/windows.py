"""One window of the single-layer protocol, and the resumable CSV its experiment appends.

The experiments that run Getzner et al.'s protocol (:mod:`composition`, :mod:`elementwise`,
:mod:`channels`) differ in what they run and in the columns that say so; a window itself is
measured and written the same way in each: a short unmeasured warm-up, the forward passes of
:func:`~collector.campaign.loop.forward_passes` between the meter's window edges, one CSV row
appended and flushed at once, and the windows a file already holds skipped on a rerun.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import torch
from torch import nn

from collector.campaign.loop import forward_passes, interleaved
from collector.meters.base import EnergyMeter
from collector.meters.cputime import CpuTimeMeter
from joulecast.errors import InvalidArgument

WARMUP_S = 0.05
"""Wall seconds of unmeasured passes before each window (first-call allocations, oneDNN's
primitive cache): a 30 s Getzner window amortises them, a sub-second one would not."""


@dataclass(frozen=True)
class Reading:
    """What the meter read over one window of ``passes`` forward passes, and what it ran
    beside. Energy in joules, times in seconds, power in watts."""

    passes: int
    cpu_s: float
    wall_s: float
    energy_j: float
    energy_per_pass_j: float
    energy_source: str
    core_power_w: float
    others_busy_cores: float | None
    loadavg_1m: float
    cpu_model: str
    torch_version: str

    def summary(self) -> str:
        """The energy per pass and the passes, as a progress line shows them."""
        return f"{self.energy_per_pass_j * 1e6:.1f} µJ/pass x {self.passes}"


READING = "reading"
"""The field of a row record that holds its :class:`Reading` (spread into columns in the CSV)."""


def read_window(
    module: nn.Module, shape: tuple[int, ...], meter: EnergyMeter, key: str, window_s: float
) -> Reading:
    """One window of ``module`` on a fresh random input of ``shape``, after :data:`WARMUP_S`
    of unmeasured passes; ``key`` names the meter's window. The meter must report CPU seconds
    (the cpu-time meter)."""
    data = torch.randn(shape)
    with torch.no_grad():
        forward_passes(module, data, WARMUP_S)
        meter.begin_window(key)
        passes = forward_passes(module, data, window_s)
        measured = meter.end_window(key)
    if measured.cpu_s is None:
        raise InvalidArgument(f"the {meter.name} meter reports no CPU seconds: use cpu-time")
    return Reading(
        passes=passes,
        cpu_s=measured.cpu_s,
        wall_s=measured.duration_s,
        energy_j=measured.energy_j,
        energy_per_pass_j=measured.energy_j / max(passes, 1),
        energy_source=measured.energy_source,
        core_power_w=float(getattr(meter, "core_power_w", math.nan)),
        others_busy_cores=measured.others_busy_cores,
        loadavg_1m=os.getloadavg()[0],
        cpu_model=getattr(meter, "cpu_model", ""),
        torch_version=torch.__version__,
    )


def columns(row_type: type) -> tuple[str, ...]:
    """The CSV header of a row record: its fields in order, its :data:`READING` field spread
    into the reading's own."""
    reading = tuple(f.name for f in fields(Reading))
    return tuple(
        name for f in fields(row_type) for name in (reading if f.name == READING else (f.name,))
    )


def csv_row(row: Any) -> dict[str, Any]:
    """One CSV row of a row record, in the order of :func:`columns`."""
    out: dict[str, Any] = {}
    for f in fields(row):
        value = getattr(row, f.name)
        out.update(asdict(value) if f.name == READING else {f.name: value})
    return out


class WindowItem(Protocol):
    """What an experiment runs in one window: ``name`` is unique within its ``group``."""

    @property
    def name(self) -> str: ...

    @property
    def group(self) -> str: ...


class WindowRecord(Protocol):
    @property
    def reading(self) -> Reading: ...


ItemT = TypeVar("ItemT", bound=WindowItem)
RowT = TypeVar("RowT", bound=WindowRecord)


@dataclass(frozen=True)
class WindowTable(Generic[ItemT, RowT]):
    """How one experiment measures and writes its windows.

    ``group_column`` is the CSV column holding an item's ``group``; ``measure(item, meter,
    window_s, round)`` measures one window into a row; ``describe(item, row)`` is a progress
    line's text between the round and the elapsed time. A run's duration is announced at
    ``window_s + overhead_s`` per window, in minutes to ``minute_digits`` decimals.
    """

    row_type: type[RowT]
    group_column: str
    measure: Callable[[ItemT, EnergyMeter, float, int], RowT]
    describe: Callable[[ItemT, RowT], str]
    overhead_s: float
    minute_digits: int

    @property
    def columns(self) -> tuple[str, ...]:
        return columns(self.row_type)

    def done_windows(self, path: Path) -> set[tuple[int, str, str]]:
        """(round, group, item) of every window already in the CSV at ``path``."""
        if not path.is_file():
            return set()
        with path.open(newline="") as handle:
            return {
                (int(r["round"]), r[self.group_column], r["item"]) for r in csv.DictReader(handle)
            }

    def run(
        self,
        out: Path,
        groups: Sequence[Sequence[ItemT]],
        meter: EnergyMeter,
        rounds: int,
        window_s: float,
        seed: int = 0,
        say: Callable[[str], None] = print,
    ) -> int:
        """Measure every window not yet in ``out``, ``groups`` interleaved over ``rounds``;
        returns the number measured now."""
        done = self.done_windows(out)
        todo = [
            (r, i) for r, i in interleaved(groups, rounds, seed) if (r, i.group, i.name) not in done
        ]
        total, start = len(todo), time.monotonic()
        minutes = total * (window_s + self.overhead_s) / 60
        say(f"{len(done)} windows already in {out}; {total} to measure (~{minutes:.{self.minute_digits}f} min)")  # fmt: skip
        new_file = not out.is_file()
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            if new_file:
                writer.writeheader()
            for n, (round_no, item) in enumerate(todo, 1):
                row = self.measure(item, meter, window_s, round_no)
                writer.writerow(csv_row(row))
                handle.flush()
                elapsed = time.monotonic() - start
                say(
                    f"[{n}/{total}] r{round_no} {self.describe(item, row)} "
                    f"{elapsed:.0f} s, eta {elapsed / n * (total - n):.0f} s"
                )
        return total

    def run_from_args(self, args: argparse.Namespace, groups: Sequence[Sequence[ItemT]]) -> int:
        """:meth:`run` with the options of :func:`add_window_options`, progress on stderr; the
        exit status."""
        meter = CpuTimeMeter(core_power_w=args.core_watts)
        self.run(args.out, groups, meter, args.rounds, args.window_s, args.seed,
                 say=lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
        return 0


def add_window_options(p: argparse.ArgumentParser, *, rounds: int, window_s: float) -> None:
    """The options every experiment's command ends with (read by
    :meth:`WindowTable.run_from_args`)."""
    p.add_argument(
        "--rounds", type=int, default=rounds, help="repeats of every window, interleaved"
    )
    p.add_argument("--window-s", type=float, default=window_s, help="wall seconds of one window")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--core-watts", type=float, help="per-core power (default: CodeCarbon's)")
