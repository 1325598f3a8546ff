"""Replay: a recorded NVML trace served through a fake ``pynvml`` module.

``ReplayNvml`` answers the NVML calls the NVML meter makes (``nvmlInit``,
``nvmlDeviceGetTotalEnergyConsumption``, ``nvmlDeviceGetPowerUsage``, ...) from a trace file,
at the trace time its clock gives. The NVML meter runs unchanged on top of it, so tests and
``--meter replay`` exercise the very code path that measures a real GPU.

Trace file (JSON)::

    {"name": "t4-train", "device_name": "Tesla T4", "driver": "535.104.05",
     "nvml_version": "12.535.104.05", "memory_total_mib": 15360, "energy_counter": true,
     "columns": ["t_s", "energy_mj", "power_w", "gpu_util_pct", "mem_util_pct", "mem_used_mib"],
     "rows": [[0.0, 123456789, 10.2, 0, 0, 420], ...]}

``energy_mj`` is the driver's cumulative counter (interpolated linearly between rows, served as
whole millijoules like the driver); power, utilisation and memory hold their last recorded value
until the next row, as the driver does. Past the end the trace loops, the counter carrying on
from where it stopped. ``energy_counter: false`` (or ``energy_counter=False``) makes the counter
answer NOT_SUPPORTED, as on pre-Volta boards. An optional ``"power_limit_w": 150`` is the
board's power limit in watts (served in milliwatts like the driver); without it the limit
answers NOT_SUPPORTED. ``ReplayNvml.power_limit_w`` may be changed while replaying. An optional
``"compute_pids": [4242]`` lists the processes holding a compute context on the board, as
``nvmlDeviceGetComputeRunningProcesses`` reports them (``[]``: none); without it that call
answers NOT_SUPPORTED, since a trace records the board, not who used it.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.meters.base import Measurement
from collector.meters.nvml import NvmlMeter
from collector.meters.sampler import DEFAULT_INTERVAL_S
from joulecast.errors import InvalidArgument, NotFound

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
MIB = 1024 * 1024
COLUMNS = ("t_s", "energy_mj", "power_w", "gpu_util_pct", "mem_util_pct", "mem_used_mib")


class NVMLError(Exception):
    """pynvml's error shape: ``value`` is the NVML return code."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {
            NVML_ERROR_UNINITIALIZED: "Uninitialized",
            NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
            NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        }.get(self.value, f"NVML error {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(NVML_ERROR_NOT_SUPPORTED)


@dataclass(frozen=True)
class Utilization:
    gpu: int
    memory: int


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    usedGpuMemory: int  # pynvml's name


@dataclass(frozen=True)
class MemoryInfo:
    total: int
    used: int
    free: int


@dataclass(frozen=True)
class Trace:
    """A recorded NVML trace; times in seconds, energy in millijoules, power in watts."""

    name: str
    device_name: str
    driver: str
    nvml_version: str
    memory_total_mib: float
    energy_counter: bool
    power_limit_w: float | None
    compute_pids: tuple[int, ...] | None
    t_s: tuple[float, ...]
    energy_mj: tuple[float, ...]
    power_w: tuple[float, ...]
    gpu_util_pct: tuple[float, ...]
    mem_util_pct: tuple[float, ...]
    mem_used_mib: tuple[float, ...]

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"no trace file {path}")
        try:
            doc = json.loads(path.read_text())
            index = [doc["columns"].index(column) for column in COLUMNS]
            rows = [[float(row[i]) for i in index] for row in doc["rows"]]
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise InvalidArgument(f"{path} is not a replay trace: {err}") from err
        if len(rows) < 2 or any(b[0] <= a[0] for a, b in itertools.pairwise(rows)):
            raise InvalidArgument(f"{path}: a trace needs >= 2 rows with increasing t_s")
        if any(b[1] < a[1] for a, b in itertools.pairwise(rows)):
            raise InvalidArgument(f"{path}: the energy counter must never decrease")
        limit = doc.get("power_limit_w")
        valid = isinstance(limit, int | float) and not isinstance(limit, bool)
        if limit is not None and not (valid and math.isfinite(limit) and limit > 0):
            raise InvalidArgument(f"{path}: power_limit_w must be a number of watts > 0")
        pids = doc.get("compute_pids")
        if pids is not None and not (
            isinstance(pids, list)
            and all(isinstance(p, int) and not isinstance(p, bool) and p > 0 for p in pids)
        ):
            raise InvalidArgument(f"{path}: compute_pids must be a list of process ids")
        columns = list(zip(*rows, strict=True))
        return cls(
            name=str(doc.get("name", path.stem)),
            device_name=str(doc.get("device_name", "replayed GPU")),
            driver=str(doc.get("driver", "replay")),
            nvml_version=str(doc.get("nvml_version", "replay")),
            memory_total_mib=float(doc.get("memory_total_mib", 16384)),
            energy_counter=bool(doc.get("energy_counter", True)),
            power_limit_w=None if limit is None else float(limit),
            compute_pids=None if pids is None else tuple(pids),
            t_s=columns[0],
            energy_mj=columns[1],
            power_w=columns[2],
            gpu_util_pct=columns[3],
            mem_util_pct=columns[4],
            mem_used_mib=columns[5],
        )

    @property
    def duration_s(self) -> float:
        return self.t_s[-1] - self.t_s[0]

    def _locate(self, t_s: float) -> tuple[int, float, int]:
        """(loop count, time within the trace, index of the last row at or before it)."""
        loops, offset = divmod(t_s - self.t_s[0], self.duration_s)
        local = self.t_s[0] + offset
        return int(loops), local, max(0, bisect.bisect_right(self.t_s, local) - 1)

    def energy_mj_at(self, t_s: float) -> float:
        """The cumulative counter at trace time ``t_s`` (linear between rows, looping)."""
        loops, local, i = self._locate(t_s)
        per_loop = self.energy_mj[-1] - self.energy_mj[0]
        j = min(i + 1, len(self.t_s) - 1)
        span = self.t_s[j] - self.t_s[i]
        frac = (local - self.t_s[i]) / span if span > 0 else 0.0
        within = self.energy_mj[i] + frac * (self.energy_mj[j] - self.energy_mj[i])
        return within + loops * per_loop

    def row_at(self, t_s: float) -> int:
        """Index of the row whose held values apply at trace time ``t_s``."""
        return self._locate(t_s)[2]


class ReplayClock:
    """Trace time in seconds: wall time since creation x ``speed``."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise InvalidArgument(f"replay speed must be > 0, got {speed!r}")
        self.speed = speed
        self._start = time.monotonic()

    def __call__(self) -> float:
        return (time.monotonic() - self._start) * self.speed


class ManualClock:
    """A clock that only moves when told to (seconds); for exact tests."""

    def __init__(self, t_s: float = 0.0) -> None:
        self.t_s = t_s

    def advance(self, dt_s: float) -> None:
        self.t_s += dt_s

    def __call__(self) -> float:
        return self.t_s


class ReplayNvml:
    """A module-like object with pynvml's names, serving one GPU from ``trace``.

    ``calls`` logs every counter read as ``(trace time, millijoules served)`` so tests can check
    the meter's arithmetic against what it was actually given.
    """

    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported
    NVML_ERROR_NOT_SUPPORTED = NVML_ERROR_NOT_SUPPORTED
    NVML_ERROR_UNINITIALIZED = NVML_ERROR_UNINITIALIZED

    def __init__(
        self,
        trace: Trace,
        clock: Callable[[], float] | None = None,
        energy_counter: bool | None = None,
        power: bool = True,
        processes: Sequence[int] | None = None,
    ) -> None:
        self.trace = trace
        self.processes = trace.compute_pids if processes is None else tuple(processes)
        self.clock = clock if clock is not None else ReplayClock()
        self.energy_counter = trace.energy_counter if energy_counter is None else energy_counter
        self.power = power
        self.power_limit_w = trace.power_limit_w
        """The board's power limit in watts (None: NOT_SUPPORTED); may be changed meanwhile."""
        self.counter_reads: list[tuple[float, int]] = []
        self._init_count = 0
        self._lock = threading.Lock()

    # -- life cycle
    def nvmlInit(self) -> None:
        self._init_count += 1

    def nvmlShutdown(self) -> None:
        self._check()
        self._init_count -= 1

    def _check(self) -> None:
        if self._init_count <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _handle(self, handle: Any) -> None:
        self._check()
        if handle != 0:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    # -- system
    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.trace.driver

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check()
        return self.trace.nvml_version

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._check()
        if index != 0:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return 0

    def nvmlDeviceGetName(self, handle: int) -> str:
        self._handle(handle)
        return self.trace.device_name

    # -- readings
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        self._handle(handle)
        if not self.energy_counter:
            raise NVMLError_NotSupported()
        t = self.clock()
        value = int(self.trace.energy_mj_at(t))
        with self._lock:
            self.counter_reads.append((t, value))
        return value

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        """Power in milliwatts."""
        self._handle(handle)
        if not self.power:
            raise NVMLError_NotSupported()
        return round(self.trace.power_w[self.trace.row_at(self.clock())] * 1000)

    def nvmlDeviceGetPowerManagementLimit(self, handle: int) -> int:
        """The power limit in milliwatts."""
        self._handle(handle)
        if self.power_limit_w is None:
            raise NVMLError_NotSupported()
        return round(self.power_limit_w * 1000)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Utilization:
        self._handle(handle)
        i = self.trace.row_at(self.clock())
        return Utilization(
            gpu=round(self.trace.gpu_util_pct[i]), memory=round(self.trace.mem_util_pct[i])
        )

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[ProcessInfo]:
        """The compute processes given as ``processes``, else the trace's ``compute_pids`` (not
        supported when neither lists any: a trace records the board, not who used it)."""
        self._handle(handle)
        if self.processes is None:
            raise NVMLError_NotSupported()
        return [ProcessInfo(pid=pid, usedGpuMemory=0) for pid in self.processes]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> MemoryInfo:
        self._handle(handle)
        used = round(self.trace.mem_used_mib[self.trace.row_at(self.clock())] * MIB)
        total = round(self.trace.memory_total_mib * MIB)
        return MemoryInfo(total=total, used=used, free=total - used)


class ReplayMeter(NvmlMeter):
    """The NVML meter reading a recorded trace instead of a GPU (``--meter replay``).

    Args:
        trace: a trace file path or a loaded ``Trace``.
        speed: trace seconds per wall-clock second (1: real time; the trace loops).
        energy_counter: override the trace's counter support (False: integral fallback).
        clock: trace-time clock (default ``ReplayClock(speed)``); durations are in trace time.
        sample_interval_s: sampler interval in wall-clock seconds.
    """

    name = "replay"

    def __init__(
        self,
        trace: str | Path | Trace,
        speed: float = 1.0,
        energy_counter: bool | None = None,
        clock: Callable[[], float] | None = None,
        sample_interval_s: float = DEFAULT_INTERVAL_S,
        processes: Sequence[int] | None = None,
        **nvml_meter_args: Any,
    ) -> None:
        self.trace = trace if isinstance(trace, Trace) else Trace.load(trace)
        clock = clock if clock is not None else ReplayClock(speed)
        self.nvml = ReplayNvml(
            self.trace, clock, energy_counter=energy_counter, processes=processes
        )
        super().__init__(
            gpu_index=0,
            sample_interval_s=sample_interval_s,
            nvml=self.nvml,
            clock=clock,
            **nvml_meter_args,
        )

    def end_window(self, key: str, sync: Callable[[], None] | None = None) -> Measurement:
        measurement = super().end_window(key, sync)
        return replace(measurement, notes=(*measurement.notes, f"replayed trace {self.trace.name}"))

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "replay_trace": self.trace.name}
