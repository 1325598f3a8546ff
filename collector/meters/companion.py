"""A primary meter with CodeCarbon running alongside on the same windows.

The paper's tracker and ours see the same window: CodeCarbon's task opens just before the
primary window and closes just after it (so CodeCarbon's window holds the primary one, by about
a millisecond at each edge). The primary meter's Measurement is returned with CodeCarbon's
energy in ``codecarbon_energy_j`` and its mode in ``codecarbon_mode``; everything else (energy,
source, idle baseline, trace) is the primary's.

CodeCarbon is the second opinion, never the reading: when its task returns nothing for a window
(its tracker refused to start the task, or lost it) or no energy for a window that lasted, the
primary's measurement is kept, without CodeCarbon's figures and with a note that says why. A
window of real NVML energy must not be thrown away because the tracker beside it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from collector.meters.base import EnergyMeter, Measurement, MeterUnavailable
from collector.meters.codecarbon_meter import CodeCarbonMeter

log = logging.getLogger(__name__)


class WithCodeCarbon(EnergyMeter):
    """``primary`` measured together with ``codecarbon``."""

    def __init__(self, primary: EnergyMeter, codecarbon: CodeCarbonMeter) -> None:
        self.primary = primary
        self.codecarbon = codecarbon
        self.name = primary.name

    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        self.codecarbon.begin_window(key, sync)
        try:
            self.primary.begin_window(key, sync)
        except BaseException:
            self.codecarbon.end_window(key)
            raise

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        try:
            measurement = self.primary.end_window(key, sync)
        finally:
            try:
                companion = self.codecarbon.end_window(key)
            except MeterUnavailable as err:
                companion, why = None, str(err)
        if companion is not None and companion.energy_j <= 0 < measurement.duration_s:
            companion, why = None, f"CodeCarbon reported no energy for window {key!r}"
        if companion is None:
            log.warning("window %r kept without CodeCarbon's reading: %s", key, why)
            return replace(
                measurement,
                notes=(*measurement.notes, f"codecarbon alongside gave no reading: {why}"),
            )
        return replace(
            measurement,
            codecarbon_energy_j=companion.energy_j,
            codecarbon_mode=companion.codecarbon_mode,
            notes=(*measurement.notes, *companion.notes),
        )

    def measure_idle_power_w(self, duration_s: float) -> float | None:
        return self.primary.measure_idle_power_w(duration_s)

    @property
    def idle_baseline_w(self) -> float | None:
        return self.primary.idle_baseline_w

    def set_idle_baseline(self, idle_power_w: float | None) -> None:
        self.primary.set_idle_baseline(idle_power_w)

    def describe(self) -> dict[str, str]:
        facts = self.codecarbon.describe()
        facts.pop("meter", None)
        return {**facts, **self.primary.describe()}

    def close(self) -> None:
        try:
            self.primary.close()
        finally:
            self.codecarbon.close()
