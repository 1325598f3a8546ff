"""Did the meter see the work? GPU rows whose power never moves read an idle board.

A GPU's power follows what it computes: across networks of different sizes it moves by tens of
percent (the shipped H200 sweep spans 101-540 W, the Zeus traces 33-253 W). When every
configuration of a GPU's rows draws the same few watts, the meter watched a board that did
nothing: the work ran on another device (a CPU study's CodeCarbon ``gpu_energy`` reads the idle
GPU beside it: 29.5-31.9 W on a 250 W RTX 2080 Ti in every one of Getzner et al.'s 1,500 rows),
or on another GPU than the one metered. Such energy is a duration times an idle power: fitted,
it would be served as a measurement of work it never saw.

Flat power alone is not proof (a board held at its power limit is flat too), so a finding also
needs one piece of evidence that the board was idle: a GPU utilisation of at most
:data:`IDLE_UTIL_PCT` in every row, power no higher than the rows' own idle baseline, or a work
rate that varied :data:`WORK_RATE_SPREAD` times or more while the power stayed below
:data:`LOW_SHARE` of the board's power limit. Only measured GPU rows are judged: an estimate
follows CPU time by construction, and a CPU's package power hardly depends on which operator
one core runs.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from joulecast.errors import FailedPrecondition
from joulecast.measurement import Row, is_estimate
from joulecast.store import MeasurementStore

MIN_CONFIGS = 4
"""Configurations a (hardware, phase) needs before its power can be called flat."""
FLAT_RATIO = 1.10
"""Highest over lowest per-configuration median power, at most: flat."""
IDLE_UTIL_PCT = 2.0
"""GPU utilisation (percent) at or below which a row's board computed nothing."""
IDLE_MARGIN = 1.05
"""Power at most this times the idle baseline: the board never left idle."""
WORK_RATE_SPREAD = 4.0
"""FLOP/s spread across configurations that a working board's power would follow."""
LOW_SHARE = 0.4
"""Share of the power limit below which a flat power cannot be a board held at its limit."""


@dataclass(frozen=True)
class IdleMeter:
    """One (hardware, phase) whose rows read an idle GPU, and why."""

    hardware: str
    phase: str
    configurations: int
    low_w: float
    high_w: float
    evidence: str

    def message(self) -> str:
        return (
            f"{self.hardware} ({self.phase}): the meter did not see the work: {self.configurations} "
            f"configurations all drew {self.low_w:.1f}-{self.high_w:.1f} W, {self.evidence}; "
            "that is an idle GPU's power (did the work run on another device, or is it too "
            "light to move the board?)"
        )


def findings(rows: Iterable[Row]) -> list[IdleMeter]:
    """The (hardware, phase) groups of measured GPU rows whose meter saw an idle board (a
    board's power limit, where its rows record none, is the catalog's: :func:`catalog_limits`)."""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        if _judged(row):
            groups[row.hardware, row.phase].append(row)
    found = []
    for (hardware, phase), members in sorted(groups.items()):
        finding = _judge(hardware, phase, members)
        if finding is not None:
            found.append(finding)
    return found


class IdleMeterRows(FailedPrecondition):
    """A store's measured GPU rows read an idle board, not the work."""


def refuse(store_path: str | Path, hardware: str | None = None) -> None:
    """IdleMeterRows when measured GPU rows of ``hardware`` (every hardware of the store when
    None) read a board that did nothing: fitted, a duration times an idle power would be
    served as a measurement of the work."""
    with MeasurementStore(store_path, read_only=True) as store:
        rows = store.rows(status="ok", hardware=hardware)
    found = findings(rows)
    if found:
        raise IdleMeterRows(
            "; ".join(f.message() for f in found)
            + ". Not fitted: meter the device that runs the work (for an import, the energy "
            "column of that device), or pass --allow-idle-meter to fit these rows anyway"
        )


def catalog_limits(rows: Iterable[Row]) -> dict[str, float]:
    """Per hardware, the catalogued power limit of the board its rows name (``device_name``
    as NVML or CodeCarbon writes it: ``1 x NVIDIA GeForce RTX 2080 Ti``), where one matches."""
    from joulecast.hardware import AmbiguousGpuName, find_gpu

    limits: dict[str, float] = {}
    for row in rows:
        if row.hardware in limits or not row.device_name:
            continue
        name = re.sub(r"^\s*\d+\s*x\s+", "", row.device_name)
        try:
            spec = find_gpu(name) or find_gpu(row.hardware)
        except AmbiguousGpuName:
            continue
        if spec is not None:
            limits[row.hardware] = float(spec.power_limit_w)
    return limits


def _judged(row: Row) -> bool:
    return (
        row.status == "ok"
        and (row.device or "").startswith("cuda")
        and not (row.energy_is_estimate or is_estimate(row.energy_source or ""))
        and bool(row.energy_j and row.energy_j > 0)
        and bool(row.duration_s and row.duration_s > 0)
    )


def _judge(hardware: str, phase: str, rows: list[Row]) -> IdleMeter | None:
    by_config: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_config[row.config_id].append(row)
    if len(by_config) < MIN_CONFIGS:
        return None
    power = {c: statistics.median(_power(r) for r in rs) for c, rs in by_config.items()}
    low, high = min(power.values()), max(power.values())
    if high > FLAT_RATIO * low:
        return None
    evidence = _evidence(hardware, rows, by_config, high)
    if evidence is None:
        return None
    return IdleMeter(hardware, phase, len(by_config), low, high, evidence)


def _evidence(
    hardware: str, rows: list[Row], by_config: dict[str, list[Row]], high_w: float
) -> str | None:
    utils = [r.gpu_util_mean for r in rows]
    if all(u is not None for u in utils) and max(utils) <= IDLE_UTIL_PCT:  # type: ignore[type-var]
        return f"at a GPU utilisation of at most {max(utils):g} %"  # type: ignore[type-var]
    idles = [r.idle_power_w for r in rows if r.idle_power_w]
    if idles and high_w <= IDLE_MARGIN * statistics.median(idles):
        return f"no more than their idle baseline ({statistics.median(idles):.1f} W)"
    limits = [r.power_limit_w for r in rows if r.power_limit_w]
    # the catalog is asked only for a flat group whose rows record no limit
    limit_w = statistics.median(limits) if limits else catalog_limits(rows).get(hardware)
    per_config = ([x for x in map(_flop_rate, rs) if x is not None] for rs in by_config.values())
    rates = [statistics.median(known) for known in per_config if known]
    if limit_w and high_w < LOW_SHARE * limit_w and len(rates) >= MIN_CONFIGS:
        spread = max(rates) / min(rates)
        if spread >= WORK_RATE_SPREAD:
            return (
                f"{high_w / limit_w:.0%} of the board's {limit_w:g} W at most, while their "
                f"work rate varied {spread:.0f}x"
            )
    return None


def _power(row: Row) -> float:
    return float(row.energy_j) / float(row.duration_s)  # type: ignore[arg-type]


def _flop_rate(row: Row) -> float | None:
    per_sample = row.flops_train if row.phase == "train" else row.flops_forward
    if not per_sample or per_sample <= 0:
        return None
    return per_sample * row.samples * row.epochs / float(row.duration_s)  # type: ignore[arg-type]
