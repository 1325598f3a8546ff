"""The NVML meter: GPU energy of a window from the driver's energy counter.

Energy is the difference of ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules) between the
window's edges: source ``nvml-energy-counter``. Where the device has no counter, the sampled
board power is integrated (trapezoid rule): source ``nvml-power-integral``. A background
sampler (``sampler.py``, every 100 ms by default) records power, GPU and memory utilisation and
memory used throughout; the measurement stores their means and the trace. The board's power
limit (``nvmlDeviceGetPowerManagementLimit``) is read at both edges of the window.

Short windows. The counter advances when the driver refreshes its power reading; we assume an
update period of ``COUNTER_UPDATE_PERIOD_S`` = 0.1 s (NVML's documented power-sample period on
Volta..Hopper is 20-100 ms; 100 ms is the safe end). A window shorter than that, a counter that
did not advance, or an integral over fewer than two power samples is flagged ``short_window``;
when the counter did not advance and power samples exist, the energy is mean power x duration
(source ``nvml-power-integral``) with a note. So is a short window across which the counter
stepped by more than :data:`IMPOSSIBLE_OVER_LIMIT` times the board's limit would allow: the step
holds energy drawn before the window. A zero, or a power no board draws, is never stored
silently.

Idle baseline: ``measure_idle_power_w(s)`` reads the counter (or samples power) while nothing
runs; ``calibrate_idle(s)`` (from ``EnergyMeter``) also makes it the baseline, and every later
window carries ``idle_power_w`` and ``energy_dynamic_j`` = total - idle x duration.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.meters.base import EnergyMeter, Measurement, MeterUnavailable, with_idle_baseline
from collector.meters.nvml_device import NvmlDevice
from collector.meters.sampler import DEFAULT_INTERVAL_S, Sampler, sample_for, summarize
from collector.meters.stamp import stamped_read
from collector.meters.windows import pop_window, start_window
from joulecast.errors import InvalidArgument
from joulecast.measurement import SOURCE_NVML_COUNTER, SOURCE_NVML_INTEGRAL, TraceSample

logger = logging.getLogger(__name__)

COUNTER_UPDATE_PERIOD_S = 0.1
IMPOSSIBLE_OVER_LIMIT = 1.5
"""A short window whose counter difference implies more than this many times the board's power
limit holds a counter step, not the window's energy (boards exceed their limit in short spikes,
never by half over a whole window)."""


@dataclass
class _Window:
    t0_s: float
    energy0_mj: int | None
    sampler: Sampler
    pids0: frozenset[int] | None
    limit0_w: float | None


def _power_limit(
    before_w: float | None, after_w: float | None
) -> tuple[float | None, tuple[str, ...]]:
    """The window's power limit from its two edges: a window whose limit changed (someone ran
    ``nvidia-smi -pl`` meanwhile) ran under no one limit, so it gets none, and a note."""
    if before_w == after_w:
        return before_w, ()
    if before_w is None or after_w is None:
        return None, ()
    return None, (f"power limit changed during the window: {before_w:g} W -> {after_w:g} W",)


class NvmlMeter(EnergyMeter):
    """GPU energy of windows on GPU ``gpu_index``.

    Args:
        gpu_index: NVML index of the GPU.
        sample_interval_s: seconds between sampler readings (0.1; the paper used 5).
        nvml: the NVML module (default: the real pynvml, imported here and not before).
        clock: monotonic clock in seconds for durations and trace timestamps.
        counter_period_s: the energy counter's assumed update period (short-window flag).
        use_counter: False forces the power integral even where the counter exists.
    """

    name = "nvml"

    def __init__(
        self,
        gpu_index: int = 0,
        sample_interval_s: float = DEFAULT_INTERVAL_S,
        nvml: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
        counter_period_s: float = COUNTER_UPDATE_PERIOD_S,
        use_counter: bool = True,
    ) -> None:
        if not sample_interval_s > 0:
            raise InvalidArgument(f"sample interval must be > 0 s, got {sample_interval_s!r}")
        self.gpu_index = gpu_index
        self.sample_interval_s = sample_interval_s
        self.counter_period_s = counter_period_s
        self._clock = clock
        self._device = NvmlDevice(gpu_index, nvml)
        self.use_counter = use_counter and self._device.energy_counter_supported
        if not self.use_counter and not self._device.power_supported:
            self._device.close()
            raise MeterUnavailable(f"GPU {gpu_index} reports neither energy nor power")
        self._windows: dict[str, _Window] = {}
        self.shared_windows = 0
        """Windows so far during which another process held a compute context on the GPU."""

    @property
    def energy_source(self) -> str:
        """The source this meter's windows will normally carry."""
        return SOURCE_NVML_COUNTER if self.use_counter else SOURCE_NVML_INTEGRAL

    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        start_window(self._windows, key, sync)
        sampler = Sampler(self._device.probe, self.sample_interval_s, self._clock).start()
        try:
            pids0 = self._device.compute_pids()
            limit0_w = self._device.power_limit_w()
            t0, energy0 = self._stamped_counter()
        except BaseException:
            sampler.stop()
            raise
        self._windows[key] = _Window(t0, energy0, sampler, pids0, limit0_w)

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        window = pop_window(self._windows, key)
        if sync is not None:
            sync()
        t1, energy1 = self._stamped_counter()
        trace = window.sampler.stop()
        duration_s = t1 - window.t0_s
        energy_j, source, short, notes = self._energy(window, energy1, duration_s, trace)
        if window.sampler.errors:
            notes += (f"{window.sampler.errors} samples failed: {window.sampler.first_error}",)
        sharing, others = self._sharing(key, window.pids0, self._device.compute_pids())
        notes += sharing
        limit_w, limit_notes = _power_limit(window.limit0_w, self._device.power_limit_w())
        notes += limit_notes
        stats = summarize(trace)
        measurement = Measurement(
            duration_s=duration_s,
            energy_j=energy_j,
            energy_source=source,
            power_mean_w=stats.power_mean_w,
            power_limit_w=limit_w,
            gpu_util_mean=stats.gpu_util_mean,
            mem_util_mean=stats.mem_util_mean,
            mem_used_mean_mib=stats.mem_used_mean_mib,
            short_window=short,
            shared=bool(others),
            gpu_other_processes=others,
            trace=trace,
            notes=notes,
        )
        return with_idle_baseline(measurement, self.idle_baseline_w)

    def _sharing(
        self, key: str, before: frozenset[int] | None, after: frozenset[int] | None
    ) -> tuple[tuple[str, ...], int | None]:
        """What else held the GPU during the window: the energy counter and the power samples
        are the whole board's, so another process's kernels count as this window's work.
        Returns notes (``gpu_processes=N``, the compute processes seen at either edge) and the
        other processes among them (None when NVML listed none, this process included, so that
        none can be told apart; a lower bound, said in the notes, when this process is not
        among NVML's ids); warns once when others are there."""
        if before is None and after is None:
            return (), None
        seen = (before or frozenset()) | (after or frozenset())
        notes = [f"gpu_processes={len(seen)}"]
        own = os.getpid()
        if own in seen:
            others = len(seen - {own})
        elif seen:
            others = len(seen) - 1  # NVML's host ids (a container); one context is this one's
            notes.append(
                "gpu_other_processes is a lower bound (this process's id is not among NVML's)"
            )
        else:
            others = 0
        if others > 0:
            if self.shared_windows == 0:
                logger.warning(
                    "window %s: %d other process(es) ran on GPU %d; the board's energy counts "
                    "their work as this window's (each row keeps gpu_other_processes)",
                    key,
                    others,
                    self.gpu_index,
                )
            self.shared_windows += 1
        return tuple(notes), others if seen else None

    def _energy(
        self,
        window: _Window,
        energy1_mj: int | None,
        duration_s: float,
        trace: tuple[TraceSample, ...],
    ) -> tuple[float, str, bool, tuple[str, ...]]:
        """(energy in J, source, short-window flag, notes) of a closed window."""
        stats = summarize(trace)
        if window.energy0_mj is not None and energy1_mj is not None:
            delta_mj = energy1_mj - window.energy0_mj
            short = duration_s < self.counter_period_s
            implied_w = delta_mj / 1000.0 / duration_s if duration_s > 0 else math.inf
            limit_w = window.limit0_w
            stepped = (
                short
                and limit_w is not None
                and implied_w > IMPOSSIBLE_OVER_LIMIT * limit_w
                and stats.power_mean_w is not None
            )
            if delta_mj > 0 and not stepped:
                return delta_mj / 1000.0, SOURCE_NVML_COUNTER, short, ()
            if stepped:
                # The counter stepped inside a window shorter than its update period: the step
                # holds energy drawn before the window began, a power no board can draw.
                assert stats.power_mean_w is not None
                note = (
                    f"energy counter stepped by {delta_mj} mJ in {duration_s * 1000:.2f} ms "
                    f"({implied_w:.0f} W implied, board limit {limit_w:g} W); energy = mean "
                    "sampled power x duration"
                )
                return stats.power_mean_w * duration_s, SOURCE_NVML_INTEGRAL, True, (note,)
            if delta_mj < 0:
                note = f"energy counter went backwards ({delta_mj} mJ): driver reset?"
            else:
                note = "energy counter did not advance during the window"
            if stats.power_mean_w is not None and duration_s > 0:
                energy_j = stats.power_mean_w * duration_s
                note += "; energy = mean sampled power x duration"
                return energy_j, SOURCE_NVML_INTEGRAL, True, (note,)
            raise MeterUnavailable(f"{note}, and no power sample to fall back on")
        # No counter: trapezoid integral of the sampled power.
        power_samples = sum(1 for s in trace if s.power_w is not None)
        if stats.power_integral_j is not None and stats.power_integral_j > 0:
            short = power_samples < 3 or duration_s < self.sample_interval_s
            return stats.power_integral_j, SOURCE_NVML_INTEGRAL, short, ()
        if stats.power_mean_w is not None:
            note = f"{power_samples} power sample(s): energy = mean power x duration"
            return stats.power_mean_w * duration_s, SOURCE_NVML_INTEGRAL, True, (note,)
        raise MeterUnavailable("no power sample in the window")

    def compute_pids(self) -> frozenset[int] | None:
        """Process ids holding a compute context on the metered GPU now (NVML's ids: the host's,
        inside a container); None when the driver does not say."""
        return self._device.compute_pids()

    def power_limit_w(self) -> float | None:
        """The board's power limit now, in watts; None when the driver does not say."""
        return self._device.power_limit_w()

    def measure_idle_power_w(self, duration_s: float) -> float | None:
        """Mean board power in watts over ``duration_s`` seconds of doing nothing (from the
        counter where there is one, else the mean of the sampled power)."""
        if not duration_s > 0:
            raise InvalidArgument(f"idle duration must be > 0 s, got {duration_s!r}")
        t0, energy0 = self._stamped_counter()
        trace = sample_for(self._device.probe, duration_s, self.sample_interval_s, self._clock)
        t1, energy1 = self._stamped_counter()
        elapsed_s = t1 - t0
        if energy0 is not None and energy1 is not None and energy1 > energy0 and elapsed_s > 0:
            return (energy1 - energy0) / 1000.0 / elapsed_s
        return summarize(trace).power_mean_w

    def _stamped_counter(self) -> tuple[float, int | None]:
        """The energy counter (None without one) and the time it stands for
        (:func:`collector.meters.stamp.stamped_read`)."""
        if not self.use_counter:
            return self._clock(), None
        return stamped_read(self._device.total_energy_mj, self._clock)

    def describe(self) -> dict[str, str]:
        return {"meter": self.name, "energy_source": self.energy_source, **self._device.describe()}

    def close(self) -> None:
        for window in self._windows.values():
            window.sampler.stop()
        self._windows.clear()
        self._device.close()
