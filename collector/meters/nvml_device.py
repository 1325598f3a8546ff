"""One NVIDIA GPU through NVML: the hardware adapter under the NVML meter.

The NVML module is passed in (the real ``pynvml`` from nvidia-ml-py, imported only when a
device is opened, or the replay module of ``replay.py``), so nothing touches NVML at import
time and tests run the very same code against a recorded trace. Every NVML error becomes a
``MeterUnavailable`` here, in ``_nvml_call``, and nowhere else; "not supported" is not an
error but an answer (``None``).

Units: energy in millijoules as NVML counts it, power in watts, utilisation in percent, memory
in MiB.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from collector.meters.base import MeterUnavailable
from joulecast.measurement import TraceSample

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED, in case a module lacks the constant


def import_pynvml() -> ModuleType:
    """The real NVML bindings; MeterUnavailable when nvidia-ml-py is not installed."""
    try:  # optional (nvidia-ml-py): a machine without a GPU opens the other meters without it
        import pynvml
    except ImportError as err:
        raise MeterUnavailable("nvidia-ml-py (pynvml) is not installed") from err
    return pynvml


class NotSupported(Exception):
    """Internal: NVML answered NOT_SUPPORTED for a query this device cannot serve."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlDevice:
    """GPU ``index`` opened through ``nvml`` (default: the real pynvml).

    ``energy_counter_supported`` and ``power_supported`` say which of the two energy paths the
    device offers (Volta and newer have the counter; T4 included).
    """

    def __init__(self, index: int = 0, nvml: Any | None = None) -> None:
        self.index = index
        self._nvml = nvml if nvml is not None else import_pynvml()
        self._call(self._nvml.nvmlInit)
        self._initialised = True
        try:
            count = self._call(self._nvml.nvmlDeviceGetCount)
            if not 0 <= index < count:
                raise MeterUnavailable(f"no GPU {index}: NVML sees {count}")
            self._handle = self._call(self._nvml.nvmlDeviceGetHandleByIndex, index)
            self.energy_counter_supported = self.total_energy_mj() is not None
            self.power_supported = self.power_w() is not None
        except BaseException:
            self.close()
            raise

    def _call(self, fn: Any, *args: Any) -> Any:
        """Call one NVML function, mapping its errors: NOT_SUPPORTED -> NotSupported,
        any other NVML error -> MeterUnavailable."""
        try:
            return fn(*args)
        except self._nvml.NVMLError as err:
            not_supported = getattr(self._nvml, "NVML_ERROR_NOT_SUPPORTED", _NOT_SUPPORTED)
            if getattr(err, "value", None) == not_supported:
                raise NotSupported(str(err)) from err
            name = getattr(fn, "__name__", "NVML")
            raise MeterUnavailable(f"NVML {name} failed: {err}") from err

    def _optional(self, fn: Any, *args: Any) -> Any:
        try:
            return self._call(fn, *args)
        except NotSupported:
            return None

    def total_energy_mj(self) -> int | None:
        """Energy counter in millijoules since the driver loaded; None when not supported."""
        return self._optional(self._nvml.nvmlDeviceGetTotalEnergyConsumption, self._handle)

    def power_w(self) -> float | None:
        """Board power in watts (NVML reports milliwatts); None when not supported."""
        milliwatts = self._optional(self._nvml.nvmlDeviceGetPowerUsage, self._handle)
        return None if milliwatts is None else milliwatts / 1000.0

    def power_limit_w(self) -> float | None:
        """The power limit the board enforces now, in watts (NVML reports milliwatts); None
        when not supported (or the NVML module has no such call)."""
        query = getattr(self._nvml, "nvmlDeviceGetPowerManagementLimit", None)
        if query is None:
            return None
        milliwatts = self._optional(query, self._handle)
        return None if milliwatts is None else milliwatts / 1000.0

    def utilization_pct(self) -> tuple[float | None, float | None]:
        """(GPU, memory) utilisation in percent over the driver's last sample period."""
        rates = self._optional(self._nvml.nvmlDeviceGetUtilizationRates, self._handle)
        return (None, None) if rates is None else (float(rates.gpu), float(rates.memory))

    def memory_used_mib(self) -> float | None:
        info = self._optional(self._nvml.nvmlDeviceGetMemoryInfo, self._handle)
        return None if info is None else info.used / MIB

    def compute_pids(self) -> frozenset[int] | None:
        """Process ids holding a compute context on this GPU now (NVML reports host ids,
        which inside a container differ from ``os.getpid()``); None when not supported."""
        query = getattr(self._nvml, "nvmlDeviceGetComputeRunningProcesses", None)
        if query is None:
            return None
        processes = self._optional(query, self._handle)
        return None if processes is None else frozenset(int(p.pid) for p in processes)

    def probe(self, t_s: float) -> TraceSample:
        """One sampler reading at time ``t_s``."""
        gpu_util, mem_util = self.utilization_pct()
        return TraceSample(
            t_s=t_s,
            power_w=self.power_w() if self.power_supported else None,
            gpu_util_pct=gpu_util,
            mem_util_pct=mem_util,
            mem_used_mib=self.memory_used_mib(),
        )

    def describe(self) -> dict[str, str]:
        facts = {
            "device_name": _text(self._call(self._nvml.nvmlDeviceGetName, self._handle)),
            "driver": _text(self._call(self._nvml.nvmlSystemGetDriverVersion)),
            "gpu_index": str(self.index),
        }
        version = self._optional(self._nvml.nvmlSystemGetNVMLVersion)
        if version is not None:
            facts["nvml_version"] = _text(version)
        return facts

    def close(self) -> None:
        if getattr(self, "_initialised", False):
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception as err:  # shutting down must never hide the real outcome
                logger.debug("nvmlShutdown failed: %s", err)
