"""Choosing a meter: ``--meter auto|nvml|rapl|cpu-time|codecarbon|replay``.

``auto`` takes the best meter the machine has: NVML on a cuda device (energy counter, else power
integral), RAPL on cpu when its counters are readable; otherwise on cpu the process's CPU time x
per-core power (``cpu-time``, an estimate, repeatable because it counts only this process's
work), and on cuda CodeCarbon, which without power sensors *estimates* energy too (source
``estimate-...``). The chosen meter
carries ``chosen_reason`` (one line saying which and why) and ``estimated`` (True when its
windows will be estimates); ``estimate_banner(meter)`` is the line the CLI prints once.

Idle baseline: the runner calls ``meter.calibrate_idle(idle_s)`` before each configuration
(``open_meter(idle_s=...)`` also does it once at opening); later windows then carry
``idle_power_w`` and ``energy_dynamic_j``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from collector.meters.base import EnergyMeter, MeterUnavailable
from collector.meters.sampler import DEFAULT_INTERVAL_S
from joulecast.errors import InvalidArgument
from joulecast.measurement import is_estimate

logger = logging.getLogger(__name__)

KINDS = ("auto", "nvml", "rapl", "cpu-time", "codecarbon", "replay")
DEFAULT_COUNTRY = "FRA"


def _source_of(meter: EnergyMeter) -> str:
    return str(getattr(meter, "energy_source", meter.describe().get("energy_source", "")))


def _open_nvml(gpu_index: int, sample_interval_s: float) -> EnergyMeter:
    # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
    from collector.meters.nvml import NvmlMeter

    meter = NvmlMeter(gpu_index=gpu_index, sample_interval_s=sample_interval_s)
    how = "energy counter" if meter.use_counter else "power integral (no energy counter)"
    meter.chosen_reason = f"nvml: NVML {how} on GPU {gpu_index}"
    return meter


def _open_rapl(rapl_root: str | Path | None, sample_interval_s: float) -> EnergyMeter:
    # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
    from collector.meters.rapl import DEFAULT_ROOT, RaplMeter

    meter = RaplMeter(root=rapl_root or DEFAULT_ROOT, sample_interval_s=sample_interval_s)
    meter.chosen_reason = f"rapl: CPU package counters ({len(meter.zones)} package(s))"
    return meter


def _open_cputime(core_watts: float | None) -> EnergyMeter:
    # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
    from collector.meters.cputime import CpuTimeMeter

    meter = CpuTimeMeter(core_power_w=core_watts)
    meter.chosen_reason = (
        f"cpu-time: this process's CPU seconds x {meter.core_power_w:g} W per core "
        f"({meter.origin}; source {meter.energy_source})"
    )
    return meter


def _open_codecarbon(
    device: str, gpu_index: int, country_iso_code: str, component: str | None = None
) -> EnergyMeter:
    # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
    from collector.meters.codecarbon_meter import CodeCarbonMeter

    meter = CodeCarbonMeter(
        device=device, gpu_index=gpu_index, country_iso_code=country_iso_code, component=component
    )
    kind = "estimates" if is_estimate(meter.energy_source) else "measures"
    meter.chosen_reason = (
        f"codecarbon: {kind} {meter.component} energy in mode {meter.mode} "
        f"(source {meter.energy_source}; start-up {meter.startup_s:.1f} s)"
    )
    return meter


def _open_replay(
    trace: str | Path | None, replay_speed: float, sample_interval_s: float
) -> EnergyMeter:
    # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
    from collector.meters.replay import ReplayMeter

    if trace is None:
        raise InvalidArgument("--meter replay needs a trace file (--trace FILE)")
    meter = ReplayMeter(trace, speed=replay_speed, sample_interval_s=sample_interval_s)
    meter.chosen_reason = (
        f"replay: NVML meter on the recorded trace {meter.trace.name} ({Path(trace).name})"
    )
    return meter


def open_meter(
    kind: str = "auto",
    device: str = "cpu",
    gpu_index: int = 0,
    sample_interval_s: float = DEFAULT_INTERVAL_S,
    with_codecarbon: bool = False,
    idle_s: float = 0.0,
    country_iso_code: str = DEFAULT_COUNTRY,
    trace: str | Path | None = None,
    replay_speed: float = 1.0,
    rapl_root: str | Path | None = None,
    core_watts: float | None = None,
) -> EnergyMeter:
    """Open the meter ``kind`` for ``device`` (``cpu``, ``cuda``, ``cuda:N``).

    Args:
        kind: ``auto``, ``nvml``, ``rapl``, ``codecarbon`` or ``replay``.
        device: the torch device the work runs on; ``cuda:N`` sets the GPU index to N.
        gpu_index: NVML index of the GPU (when the device names none).
        sample_interval_s: sampler interval in seconds (0.1; the paper's 5.0 for comparison).
        with_codecarbon: run CodeCarbon alongside (its energy in ``codecarbon_energy_j``).
        idle_s: when > 0, measure idle power for that many seconds now and use it as baseline.
        country_iso_code: CodeCarbon's offline country (ISO 3166 alpha-3).
        trace: the trace file for ``replay``.
        replay_speed: trace seconds per wall second for ``replay``.
        rapl_root: powercap folder for ``rapl`` (tests).
        core_watts: per-core active power in watts for ``cpu-time`` (default: from the CPU's
            TDP in CodeCarbon's table, else 4 W).

    Raises:
        InvalidArgument: unknown kind or missing trace.
        MeterUnavailable: the requested meter cannot work here (explicit kinds never fall back).
    """
    if kind not in KINDS:
        raise InvalidArgument(f"unknown meter {kind!r}; choose one of {', '.join(KINDS)}")
    if not sample_interval_s > 0:
        raise InvalidArgument(f"sample interval must be > 0 s, got {sample_interval_s!r}")
    on_cuda = device.startswith("cuda")
    if on_cuda and ":" in device:
        try:
            gpu_index = int(device.split(":", 1)[1])
        except ValueError as err:
            raise InvalidArgument(f"bad device {device!r}") from err

    if kind == "nvml":
        meter = _open_nvml(gpu_index, sample_interval_s)
    elif kind == "rapl":
        meter = _open_rapl(rapl_root, sample_interval_s)
    elif kind == "cpu-time":
        meter = _open_cputime(core_watts)
    elif kind == "codecarbon":
        meter = _open_codecarbon(device, gpu_index, country_iso_code)
    elif kind == "replay":
        meter = _open_replay(trace, replay_speed, sample_interval_s)
    else:
        meter = _auto(
            device, on_cuda, gpu_index, sample_interval_s, country_iso_code, rapl_root, core_watts
        )
    meter.estimated = is_estimate(_source_of(meter))

    if with_codecarbon and meter.name != "codecarbon":
        # each meter's library (pynvml, codecarbon) loads only when that meter is chosen
        from collector.meters.companion import WithCodeCarbon

        try:
            companion = _open_codecarbon(device, gpu_index, country_iso_code)
        except BaseException:
            meter.close()
            raise
        wrapped = WithCodeCarbon(meter, companion)
        wrapped.chosen_reason = f"{meter.chosen_reason}; CodeCarbon alongside ({companion.mode})"
        wrapped.estimated = meter.estimated
        meter = wrapped
    if idle_s > 0:
        meter.calibrate_idle(idle_s)
    logger.info("meter %s", meter.chosen_reason)
    return meter


def _auto(
    device: str,
    on_cuda: bool,
    gpu_index: int,
    sample_interval_s: float,
    country_iso_code: str,
    rapl_root: str | Path | None,
    core_watts: float | None = None,
) -> EnergyMeter:
    tried: list[str] = []
    if on_cuda:
        try:
            return _open_nvml(gpu_index, sample_interval_s)
        except MeterUnavailable as err:
            tried.append(f"nvml: {err}")
    else:
        try:
            return _open_rapl(rapl_root, sample_interval_s)
        except MeterUnavailable as err:
            tried.append(f"rapl: {err}")
        meter = _open_cputime(core_watts)
        meter.chosen_reason = f"{meter.chosen_reason}; no power meter ({'; '.join(tried)})"
        return meter
    meter = _open_codecarbon(device, gpu_index, country_iso_code, "total")
    meter.chosen_reason = f"{meter.chosen_reason}; no power meter ({'; '.join(tried)})"
    return meter


def default_idle_s(meter_name: str) -> float:
    """Seconds of idle baseline before each configuration when none is asked: 2 s with a power
    meter (nvml, rapl), none with an estimate that cannot see idle power."""
    return 2.0 if meter_name in ("nvml", "rapl") else 0.0


def estimate_banner(meter: EnergyMeter) -> str | None:
    """The line the CLI prints once when energy is estimated; None when it is measured."""
    if not getattr(meter, "estimated", False):
        return None
    return f"energy is ESTIMATED (no power meter on this machine): {meter.chosen_reason}"
