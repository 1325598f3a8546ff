"""CodeCarbon as a meter: the paper's tracker, offline, one task per window.

One ``OfflineEmissionsTracker`` (no network, no output file) lives as long as the meter; every
window is one CodeCarbon *task* (``start_task``/``stop_task``), whose result is the energy
consumed between the two calls. CodeCarbon's hardware probe is slow (about 2.4 s on the
collector's CPU machine); the constructor pays it once with a throw-away task, after which a
window costs about 1 ms to open and 1 ms to close.

What CodeCarbon reports depends on the machine. Its CPU tracking mode is the ``_mode`` of its
``CPU`` hardware object: ``intel_rapl`` (read from powercap: measured), ``cpu_load`` (TDP x
psutil load: modelled) or ``constant`` (TDP x 50 %: modelled). Its GPU is tracked through
pynvml (the NVML energy counter: measured). The window's energy is one component of
CodeCarbon's total, chosen by ``component`` (``gpu`` on cuda, ``cpu`` on cpu, or ``total``) so
that it compares with the NVML or RAPL meter of the same device; the full breakdown is kept in
the measurement's notes. The source is ``codecarbon-<mode>`` when the component was measured and
``estimate-codecarbon-<mode>`` when CodeCarbon modelled it (e.g. ``estimate-codecarbon-cpu-load``
on a machine without RAPL).

``CodeCarbonMeter`` is a primary meter (the estimate fallback) or a companion of another meter
(see ``companion.py``), whose Measurement then carries ``codecarbon_energy_j`` and
``codecarbon_mode``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from collector.meters.base import EnergyMeter, Measurement, MeterUnavailable, with_idle_baseline
from collector.meters.windows import pop_window, start_window
from joulecast.errors import InvalidArgument
from joulecast.measurement import (
    CODECARBON_MEASURED_MODES,
    ESTIMATE_PREFIX,
    codecarbon_source,
)

logger = logging.getLogger(__name__)

KWH_TO_J = 3.6e6
COMPONENTS = ("cpu", "gpu", "ram", "total")


def _hardware_mode(hardware: Any) -> str:
    """The tracking mode of one CodeCarbon hardware object (CPU, GPU, RAM, ...)."""
    kind = type(hardware).__name__
    if kind == "CPU":
        return str(getattr(hardware, "_mode", "unknown"))
    if kind == "GPU":
        return "pynvml"  # CodeCarbon's GPU object reads NVML (or amdsmi, reported the same way)
    if kind == "RAM":
        return "ram-constant" if getattr(hardware, "_force_ram_power", None) else "ram-model"
    return kind.lower()


class CodeCarbonMeter(EnergyMeter):
    """CodeCarbon's offline tracker behind the window interface.

    Args:
        device: ``cpu`` or ``cuda`` (chooses the default component).
        gpu_index: the GPU CodeCarbon tracks on cuda.
        country_iso_code: three-letter country code for the offline carbon intensity.
        measure_power_secs: CodeCarbon's power sampling interval in seconds (it samples CPU load
            in between the window edges; small keeps short windows meaningful).
        component: which part of CodeCarbon's energy is the window's energy.
        clock: monotonic clock in seconds (for the window's duration).
    """

    name = "codecarbon"

    def __init__(
        self,
        device: str = "cpu",
        gpu_index: int = 0,
        country_iso_code: str = "FRA",
        measure_power_secs: float = 0.2,
        component: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        component = component or ("gpu" if device.startswith("cuda") else "cpu")
        if component not in COMPONENTS:
            raise InvalidArgument(f"codecarbon component must be one of {COMPONENTS}")
        self.device = device
        self.gpu_index = gpu_index
        self.country_iso_code = country_iso_code
        self.measure_power_secs = measure_power_secs
        self.component = component
        self._clock = clock
        self._open: dict[str, float] = {}
        started = time.perf_counter()
        self._tracker = self._make_tracker()
        self._warm_up()
        self.startup_s = time.perf_counter() - started
        self.modes = self._modes()
        if component != "total" and component not in self.modes:
            raise MeterUnavailable(f"CodeCarbon tracks no {component} on this machine")
        logger.debug("CodeCarbon ready in %.2f s, modes %s", self.startup_s, self.modes)

    def _make_tracker(self) -> Any:
        try:  # an optional package, absent on the GPU device machine: only this meter needs it
            from codecarbon import OfflineEmissionsTracker
        except ImportError as err:
            raise MeterUnavailable("codecarbon is not installed") from err
        # CodeCarbon logs an INFO line and a warning before it honours log_level.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        gpu_ids = [self.gpu_index] if self.device.startswith("cuda") else None
        try:
            return OfflineEmissionsTracker(
                country_iso_code=self.country_iso_code,
                output_methods=[],
                log_level="error",
                measure_power_secs=self.measure_power_secs,
                allow_multiple_runs=True,
                tracking_mode="machine",
                gpu_ids=gpu_ids,
            )
        except Exception as err:  # CodeCarbon raises bare exceptions of many kinds
            raise MeterUnavailable(f"CodeCarbon could not start: {err}") from err

    def _warm_up(self) -> None:
        """Run one empty task so that CodeCarbon's hardware probe is not inside a window."""
        self._tracker.start_task("joulecast-warm-up")
        self._tracker.stop_task("joulecast-warm-up")

    def _modes(self) -> dict[str, str]:
        modes: dict[str, str] = {}
        for hardware in getattr(self._tracker, "_hardware", []):
            kind = type(hardware).__name__
            part = {"CPU": "cpu", "GPU": "gpu", "RAM": "ram"}.get(kind, kind.lower())
            modes[part] = _hardware_mode(hardware)
        return modes

    @property
    def mode(self) -> str:
        """CodeCarbon's mode for the chosen component (``cpu_load``, ``intel_rapl``, ...)."""
        if self.component == "total":
            return "+".join(f"{part}:{mode}" for part, mode in sorted(self.modes.items()))
        return self.modes[self.component]

    @property
    def energy_source(self) -> str:
        if self.component == "total":
            measured = all(mode in CODECARBON_MEASURED_MODES for mode in self.modes.values())
            return "codecarbon-total" if measured else f"{ESTIMATE_PREFIX}codecarbon-total"
        return codecarbon_source(self.mode)

    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        if self._open and key not in self._open:
            raise InvalidArgument("CodeCarbon measures one window at a time")
        start_window(self._open, key, sync)
        self._open[key] = self._clock()
        self._tracker.start_task(key)

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        started = pop_window(self._open, key)
        if sync is not None:
            sync()
        data = self._tracker.stop_task(key)
        duration_s = self._clock() - started
        if data is None:
            raise MeterUnavailable(f"CodeCarbon returned nothing for window {key!r}")
        parts_j = {
            "cpu": data.cpu_energy * KWH_TO_J,
            "gpu": data.gpu_energy * KWH_TO_J,
            "ram": data.ram_energy * KWH_TO_J,
            "total": data.energy_consumed * KWH_TO_J,
        }
        energy_j = parts_j[self.component]
        # CodeCarbon integrates power sampled every measure_power_secs: a shorter window holds
        # a single sample, so its energy is extrapolated.
        short = duration_s < self.measure_power_secs
        notes = (
            "codecarbon "
            + " ".join(f"{part}={value:.3f}J" for part, value in parts_j.items())
            + f" modes={','.join(f'{p}:{m}' for p, m in sorted(self.modes.items()))}",
        )
        if energy_j <= 0 and duration_s > 0:
            short = True
            notes += ("codecarbon reported no energy for this window",)
        measurement = Measurement(
            duration_s=duration_s,
            energy_j=energy_j,
            energy_source=self.energy_source,
            power_mean_w=energy_j / duration_s if duration_s > 0 else None,
            short_window=short,
            codecarbon_energy_j=energy_j,
            codecarbon_mode=self.mode,
            notes=notes,
        )
        return with_idle_baseline(measurement, self.idle_baseline_w)

    def describe(self) -> dict[str, str]:
        conf = getattr(self._tracker, "_conf", {})
        facts = {
            "meter": self.name,
            "codecarbon_mode": self.mode,
            "cpu_model": str(conf.get("cpu_model", "")),
        }
        if conf.get("gpu_model"):
            facts["device_name"] = str(conf["gpu_model"])
        try:  # optional, as above: the facts are written without its version
            from codecarbon import __version__

            facts["codecarbon_version"] = str(__version__)
        except ImportError:
            pass
        return facts

    def close(self) -> None:
        for key in list(self._open):
            self._tracker.stop_task(key)
        self._open.clear()
