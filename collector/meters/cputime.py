"""CPU time as an energy proxy where no meter exists: CPU-seconds x per-core active power.

On a machine without RAPL or NVML (a shared VM, say) wall time counts everything else that ran,
so CodeCarbon's TDP x load x wall time is a timing of the machine, not of the work. The
process's own CPU time (user + system seconds of all its threads, ``time.process_time``) counts
only the work, provided no thread spins while waiting: the collector pins torch to one thread
(:func:`pin_torch_threads`) for the sweep. Energy is then CPU-seconds x the active power of one
core, which is an ESTIMATE (source ``estimate-cpu-time``), never a measurement.

Per-core power: the CPU's TDP over its cores when CodeCarbon's bundled CPU table
(``codecarbon/data/hardware/cpu_power.csv``, read as a file, offline, without importing
CodeCarbon) names the model exactly, the core count being the ``cpu cores`` of /proc/cpuinfo;
otherwise :data:`DEFAULT_CORE_POWER_W`, CodeCarbon's own default power per thread for CPUs it
does not know. A caller may also state the figure (``--core-watts``).
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collector.hardware import cpu_model as machine_cpu_model
from collector.hardware import cpu_name
from collector.meters.base import EnergyMeter, Measurement, with_idle_baseline
from collector.meters.machine_load import (
    CROWDED_CORES,
    others_busy_cores,
    read_busy_s,
)
from collector.meters.windows import pop_window, start_window
from joulecast.errors import InvalidArgument

logger = logging.getLogger(__name__)

SOURCE_CPU_TIME = "estimate-cpu-time"
DEFAULT_CORE_POWER_W = 4.0
"""Watts per busy core when the CPU's TDP is unknown (CodeCarbon's DEFAULT_POWER_PER_CORE)."""


@dataclass(frozen=True)
class CorePower:
    """Active power of one busy core in watts, and where the figure came from."""

    watts: float
    origin: str


def _codecarbon_cpu_table() -> Path | None:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "data" / "hardware" / "cpu_power.csv"
    return path if path.is_file() else None


def _clean_model(name: str) -> str:
    """CodeCarbon's clean-up of a /proc/cpuinfo model name before it looks it up."""
    name = name.replace("(R)", "").replace("(TM)", "")
    name = re.sub(r" CPU @ .*$", "", name).replace(" CPU", "")
    name = re.sub(r" @\s*\d+\.\d+GHz", "", name)
    return " ".join(name.split()).lower()


def tdp_from_table(model: str, table: Path | None = None) -> float | None:
    """The TDP in watts of ``model`` in CodeCarbon's CPU table (exact name match), else None."""
    table = table or _codecarbon_cpu_table()
    if table is None:
        return None
    wanted = {model.strip().lower(), _clean_model(model)}
    with table.open(newline="") as handle:
        for record in csv.DictReader(handle):
            if record.get("Name", "").strip().lower() in wanted:
                try:
                    return float(record["TDP"])
                except (KeyError, ValueError):
                    return None
    return None


def cores_per_package(cpuinfo: Path = Path("/proc/cpuinfo")) -> int:
    """Physical cores of one CPU package (``cpu cores``), else the logical CPU count."""
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("cpu cores"):
                try:
                    return max(1, int(line.split(":", 1)[1]))
                except ValueError:
                    break
    return os.cpu_count() or 1


def core_power(model: str, table: Path | None = None, cores: int | None = None) -> CorePower:
    """Per-core active power for the CPU ``model``: TDP / cores when known, else the default."""
    tdp_w = tdp_from_table(model, table)
    if tdp_w is None:
        return CorePower(
            DEFAULT_CORE_POWER_W,
            f"default {DEFAULT_CORE_POWER_W:g} W per core ({model!r} is not in CodeCarbon's "
            "CPU table)",
        )
    cores = cores or cores_per_package()
    return CorePower(tdp_w / cores, f"TDP {tdp_w:g} W / {cores} cores of {model} (CodeCarbon)")


def pin_torch_threads() -> None:
    """One intra-op and one inter-op thread, so that no worker spins while the window runs."""
    import torch

    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # torch refuses once inter-op work has started; it then stays as set
        logger.debug(
            "torch's inter-op threads were already fixed at %d", torch.get_num_interop_threads()
        )


class CpuTimeMeter(EnergyMeter):
    """Energy = the process's CPU seconds in the window x ``core_power_w`` (an estimate).

    Args:
        core_power_w: active power of one busy core in watts (default: :func:`core_power`).
        origin: where that figure came from (stored in every row's notes).
        cpu_clock: the process's CPU-time clock in seconds (all threads, user + system).
        clock: monotonic wall clock in seconds.
        machine: the machine's busy CPU seconds so far (``/proc/stat``), for the cores other
            work kept busy during the window (:mod:`collector.meters.machine_load`).
    """

    name = "cpu-time"
    energy_source = SOURCE_CPU_TIME
    estimated = True

    def __init__(
        self,
        core_power_w: float | None = None,
        origin: str | None = None,
        cpu_model: str | None = None,
        cpu_clock: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
        machine: Callable[[], float | None] = read_busy_s,
    ) -> None:
        self.cpu_model = cpu_model or machine_cpu_model()
        if core_power_w is None:
            # CodeCarbon's table is keyed by the model name alone.
            found = core_power(cpu_model or cpu_name())
            core_power_w, origin = found.watts, found.origin
        if not core_power_w > 0:
            raise InvalidArgument(f"per-core power must be > 0 W, got {core_power_w!r}")
        self.core_power_w = float(core_power_w)
        self.origin = origin or f"stated {core_power_w:g} W per core"
        self._cpu_clock = cpu_clock
        self._clock = clock
        self._machine = machine
        self._open: dict[str, tuple[float, float, float, float | None]] = {}
        self.shared_windows = 0
        """Windows so far during which other work kept ≥ CROWDED_CORES cores busy."""

    def begin_window(self, key: str, sync: Callable[[], None] | None = None) -> None:
        start_window(self._open, key, sync)
        machine = self._machine()  # read before the clocks start: its cost is not the window's
        self._open[key] = (self._clock(), self._cpu_clock(), time.thread_time(), machine)

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        wall_start, cpu_start, thread_start, machine_start = pop_window(self._open, key)
        if sync is not None:
            sync()
        thread_end, cpu_end, wall_end = time.thread_time(), self._cpu_clock(), self._clock()
        machine_end = self._machine()
        duration_s = wall_end - wall_start
        cpu_s = cpu_end - cpu_start
        energy_j = cpu_s * self.core_power_w
        others = others_busy_cores(machine_start, machine_end, cpu_s, duration_s)
        crowded = others is not None and others >= CROWDED_CORES
        if crowded:
            if self.shared_windows == 0:
                logger.warning(
                    "window %s ran while other work kept %.1f core(s) busy: CPU time per unit "
                    "of work grows with such neighbours (shared caches, memory bandwidth); "
                    "for repeatable estimates measure on a quiet machine (each row keeps "
                    "others_busy_cores)",
                    key,
                    others,
                )
            self.shared_windows += 1
        measurement = Measurement(
            duration_s=duration_s,
            energy_j=energy_j,
            energy_source=self.energy_source,
            power_mean_w=energy_j / duration_s if duration_s > 0 else None,
            short_window=cpu_s <= 0,
            shared=crowded,
            cpu_s=cpu_s,
            others_busy_cores=others,
            notes=(
                # main_thread_cpu_s leaves out helper threads (CodeCarbon's sampler alongside)
                f"main_thread_cpu_s={thread_end - thread_start:.6f}",
                f"core_power_w={self.core_power_w:g} ({self.origin})",
            ),
        )
        return with_idle_baseline(measurement, self.idle_baseline_w)

    def describe(self) -> dict[str, str]:
        return {"meter": self.name, "cpu_model": self.cpu_model}

    def close(self) -> None:
        self._open.clear()
