"""The measurement window every meter implements (after Zeus's ``begin_window``/``end_window``).

A meter measures one window of work at a time. ``sync`` (e.g. ``torch.cuda.synchronize``) is
called at both edges so that queued device work is inside the window it belongs to.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import TraceSample, is_estimate


class MeterUnavailable(FailedPrecondition):
    """A meter cannot work on this machine (no GPU, no readable RAPL files, a driver error)."""


@dataclass(frozen=True)
class Measurement:
    """What one window measured.

    ``energy_j`` is the total energy of the window in joules, from ``energy_source``.
    ``idle_power_w`` is the baseline measured before the window (None when not measured);
    ``energy_dynamic_j`` = total - idle x duration. ``short_window`` flags a window shorter than
    the meter's update period (its energy is unreliable, never a silent zero).
    ``power_limit_w`` is the GPU's power limit over the window (None: not read, or it changed
    within the window). ``shared`` says
    that other work shared what the meter read (other processes on the GPU, other cores busy
    beside a CPU-time estimate); ``others_busy_cores`` and ``gpu_other_processes`` say how
    much, and ``cpu_s`` is the process's CPU seconds in the window (cpu-time meter).
    """

    duration_s: float
    energy_j: float
    energy_source: str
    idle_power_w: float | None = None
    energy_dynamic_j: float | None = None
    power_mean_w: float | None = None
    power_limit_w: float | None = None
    gpu_util_mean: float | None = None
    mem_util_mean: float | None = None
    mem_used_mean_mib: float | None = None
    short_window: bool = False
    shared: bool = False
    codecarbon_energy_j: float | None = None
    codecarbon_mode: str | None = None
    cpu_s: float | None = None
    others_busy_cores: float | None = None
    gpu_other_processes: int | None = None
    trace: tuple[TraceSample, ...] = field(default=(), repr=False)
    notes: tuple[str, ...] = ()

    @property
    def is_estimate(self) -> bool:
        return is_estimate(self.energy_source)


def with_idle_baseline(measurement: Measurement, idle_power_w: float | None) -> Measurement:
    """``measurement`` with ``idle_power_w`` and ``energy_dynamic_j`` (total - idle x duration,
    in joules) filled in; unchanged when no baseline (None) is given."""
    if idle_power_w is None:
        return measurement
    dynamic_j = measurement.energy_j - idle_power_w * measurement.duration_s
    return replace(measurement, idle_power_w=idle_power_w, energy_dynamic_j=dynamic_j)


class EnergyMeter(ABC):
    """A device energy meter with named measurement windows."""

    #: short name used by ``--meter`` (nvml, rapl, codecarbon, replay, ...)
    name: str = "meter"
    #: one line saying which meter ``open_meter`` chose and why
    chosen_reason: str = ""
    #: True when this meter's energy is an estimate (the CLI says so once)
    estimated: bool = False

    @abstractmethod
    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        """Start measuring window ``key``."""

    @abstractmethod
    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        """Stop measuring window ``key`` and return what it measured."""

    def measure_idle_power_w(self, duration_s: float) -> float | None:
        """Mean power in watts while nothing runs for ``duration_s``; None if not supported."""
        return None

    # Idle baseline. The runner calls ``calibrate_idle(seconds)`` before each configuration (or
    # ``set_idle_baseline(watts)`` with a figure it already has); every later ``end_window``
    # fills ``idle_power_w`` and ``energy_dynamic_j`` from it until the baseline changes.

    @property
    def idle_baseline_w(self) -> float | None:
        """The idle power in watts that windows subtract, or None when none is set."""
        return getattr(self, "_idle_baseline_w", None)

    def set_idle_baseline(self, idle_power_w: float | None) -> None:
        """Use ``idle_power_w`` (watts, None to clear) as the baseline of later windows."""
        if idle_power_w is not None and not idle_power_w >= 0:
            raise InvalidArgument(f"idle power must be >= 0 W, got {idle_power_w!r}")
        self._idle_baseline_w = idle_power_w

    def calibrate_idle(self, duration_s: float) -> float | None:
        """Measure idle power for ``duration_s`` seconds and make it the baseline (watts)."""
        idle_w = self.measure_idle_power_w(duration_s)
        self.set_idle_baseline(idle_w)
        return idle_w

    def describe(self) -> dict[str, str]:
        """Hardware and driver facts for the measurement row (device name, driver, ...)."""
        return {}

    def close(self) -> None:
        """Release the meter's resources (threads, NVML handles)."""

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
