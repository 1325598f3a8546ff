"""The RAPL meter: CPU package energy from the kernel's powercap counters.

Reads ``<root>/intel-rapl:N/energy_uj`` for every package zone (``name`` = ``package-N``). AMD
Zen CPUs appear under the same ``intel-rapl`` driver on current kernels; zones named
``amd-rapl:N`` are read as well should a kernel expose them. Sub-zones (core, uncore, dram) and
the MMIO duplicate (``intel-rapl-mmio``) are skipped so that no energy is counted twice.

Each counter wraps at ``max_energy_range_uj`` (about 262 kJ, i.e. some 40 minutes at 100 W).
The sampler reads the counters every interval and adds up the per-step differences, adding the
range back when a step goes negative, so a window survives any number of wraps as long as
one sampling interval is shorter than one wrap. Source ``rapl``; power in the trace is each
step's energy over its duration, in watts.

``root`` is injectable (default ``/sys/class/powercap``): tests build a fake folder of real
files. Reading ``energy_uj`` needs root on kernels patched for CVE-2020-8694; an unreadable
counter is ``MeterUnavailable``, never a zero.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.meters.base import EnergyMeter, Measurement, MeterUnavailable, with_idle_baseline
from collector.meters.sampler import DEFAULT_INTERVAL_S, Sampler
from collector.meters.stamp import stamped_read
from collector.meters.windows import pop_window, start_window
from joulecast.errors import InvalidArgument
from joulecast.measurement import SOURCE_RAPL, TraceSample

DEFAULT_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^(intel|amd)-rapl:\d+$")


@dataclass(frozen=True)
class RaplZone:
    """One package zone: its folder, name and wrap range in microjoules."""

    path: Path
    name: str
    max_energy_range_uj: int

    def read_uj(self) -> int:
        try:
            return int((self.path / "energy_uj").read_text().strip())
        except (OSError, ValueError) as err:
            raise MeterUnavailable(f"cannot read {self.path / 'energy_uj'}: {err}") from err


def find_package_zones(root: Path = DEFAULT_ROOT) -> list[RaplZone]:
    """The readable package zones under ``root``; MeterUnavailable when there is none."""
    if not root.is_dir():
        raise MeterUnavailable(f"no RAPL: {root} does not exist")
    zones = []
    for path in sorted(root.iterdir()):
        if not _PACKAGE_ZONE.match(path.name):
            continue
        try:
            name = (path / "name").read_text().strip()
            max_range = int((path / "max_energy_range_uj").read_text().strip())
        except (OSError, ValueError) as err:
            raise MeterUnavailable(f"cannot read RAPL zone {path}: {err}") from err
        if name.startswith("package"):
            zones.append(RaplZone(path, name, max_range))
    if not zones:
        raise MeterUnavailable(f"no RAPL package zone under {root}")
    for zone in zones:
        zone.read_uj()  # unreadable (root-only) counters fail here, not inside a window
    return zones


def counter_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """``after - before`` for a counter that wraps to zero past ``max_range_uj``."""
    delta = after - before
    return delta + max_range_uj if delta < 0 else delta


class _Accumulator:
    """Sums the package counters' steps from one window's first read to its last, and knows
    when those reads were taken: the window's duration is the time between them, so that it
    spans what the energy does (:func:`collector.meters.stamp.stamped_read`)."""

    def __init__(self, zones: list[RaplZone], clock: Callable[[], float]) -> None:
        self.zones = zones
        self.clock = clock
        self.energy_uj = 0
        self.wraps = 0
        self.first_t: float | None = None
        self._last: list[int] | None = None
        self._last_t: float | None = None
        self._lock = threading.Lock()

    def probe(self, _sampled_at_s: float) -> TraceSample:
        t_s, values = stamped_read(lambda: [zone.read_uj() for zone in self.zones], self.clock)
        with self._lock:
            power_w = None
            if self._last is not None and self._last_t is not None:
                step = 0
                for zone, before, after in zip(self.zones, self._last, values, strict=True):
                    self.wraps += after < before
                    step += counter_delta_uj(before, after, zone.max_energy_range_uj)
                self.energy_uj += step
                if t_s > self._last_t:
                    power_w = step / 1e6 / (t_s - self._last_t)
            else:
                self.first_t = t_s
            self._last, self._last_t = values, t_s
        return TraceSample(t_s=t_s, power_w=power_w)

    @property
    def duration_s(self) -> float:
        """Seconds from the first read to the last (0 before two reads)."""
        if self.first_t is None or self._last_t is None:
            return 0.0
        return self._last_t - self.first_t


class RaplMeter(EnergyMeter):
    """CPU package energy of windows, summed over all packages.

    Args:
        root: the powercap folder (default ``/sys/class/powercap``).
        sample_interval_s: seconds between counter reads (wrap safety and the power trace).
        clock: monotonic clock in seconds.
    """

    name = "rapl"
    energy_source = SOURCE_RAPL

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        sample_interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not sample_interval_s > 0:
            raise InvalidArgument(f"sample interval must be > 0 s, got {sample_interval_s!r}")
        self.root = Path(root)
        self.sample_interval_s = sample_interval_s
        self._clock = clock
        self.zones = find_package_zones(self.root)
        self._windows: dict[str, tuple[_Accumulator, Sampler]] = {}

    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        start_window(self._windows, key, sync)
        accumulator = _Accumulator(self.zones, self._clock)
        sampler = Sampler(accumulator.probe, self.sample_interval_s, self._clock).start()
        self._windows[key] = (accumulator, sampler)

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        accumulator, sampler = pop_window(self._windows, key)
        if sync is not None:
            sync()
        trace = sampler.stop()
        duration_s = accumulator.duration_s
        if sampler.errors:
            raise MeterUnavailable(f"RAPL read failed during window {key!r}: {sampler.first_error}")
        energy_j = accumulator.energy_uj / 1e6
        notes: tuple[str, ...] = ()
        if accumulator.wraps:
            notes += (f"RAPL counter wrapped {accumulator.wraps} time(s)",)
        # RAPL counters update about every millisecond; a counter that did not move means the
        # window was too short to see (or the counter is frozen): flag it, never a silent zero.
        short = energy_j <= 0
        if short:
            notes += ("RAPL counter did not advance during the window",)
        measurement = Measurement(
            duration_s=duration_s,
            energy_j=energy_j,
            energy_source=SOURCE_RAPL,
            power_mean_w=energy_j / duration_s if duration_s > 0 else None,
            short_window=short,
            trace=trace,
            notes=notes,
        )
        return with_idle_baseline(measurement, self.idle_baseline_w)

    def measure_idle_power_w(self, duration_s: float) -> float | None:
        """Mean package power in watts over ``duration_s`` seconds of doing nothing."""
        if not duration_s > 0:
            raise InvalidArgument(f"idle duration must be > 0 s, got {duration_s!r}")
        key = "joulecast-idle"
        self.begin_window(key)
        time.sleep(duration_s)
        measurement = self.end_window(key)
        return measurement.power_mean_w

    def describe(self) -> dict[str, str]:
        return {
            "meter": self.name,
            "energy_source": SOURCE_RAPL,
            "rapl_zones": ",".join(f"{z.path.name}={z.name}" for z in self.zones),
            "cpu_model": cpu_model(),
        }

    def close(self) -> None:
        for _, sampler in self._windows.values():
            sampler.stop()
        self._windows.clear()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from /proc/cpuinfo ('' when unknown)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


__all__ = ["RaplMeter", "RaplZone", "counter_delta_uj", "cpu_model", "find_package_zones"]
