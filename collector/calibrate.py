"""The measuring half of ``joulecast calibrate``: the reference suite on this machine, in minutes.

The suite (``collector/plans/calibrate.json``) spans what the transfer model's parameters need:
dense layers at a small batch (weight-bound) and a large one (compute-bound), convolutions at
both, a GRU over 64 frames and a CRNN's GRU over 512 positions (sequential steps, short and
long: the transfer model's worst guess on the H200 was a long recurrence), a small patch
transformer (attention) and a narrow MLP whose steps are mostly fixed costs. Every configuration-phase is measured in a timed
window of :data:`WINDOW_S` (wall seconds on a GPU, CPU seconds on a CPU), after an idle baseline
(GPU), repeats interleaved so that a budget cut still leaves every configuration measured once.

On a GPU the board's energy counter counts every process's work, so the suite refuses to start
while another process holds a compute context on it (:class:`GpuBusy`; ``allow_busy_gpu``
overrides, and each row's notes still say who shared the board). Rows are committed as they are
measured, so a killed run rerun with the same store redoes nothing that finished.

This module measures and stores; fitting is the estimator's (``joulecast calibrate`` composes
the two).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from collector.data import synthetic_clips
from collector.executors.serial import run_serial
from collector.hardware import cpu_name, default_hardware, gpu_hardware_id, sweep_hardware
from collector.meters.cputime import pin_torch_threads
from collector.meters.select import estimate_banner, open_meter
from collector.plans import load_plan
from collector.progress import LineProgress
from collector.runner import SweepOptions, SweepSummary
from collector.window import window_clock
from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import hardware_claim_problem
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

PLAN = "calibrate"
DEFAULT_BUDGET_S = 180.0
"""Three minutes: the suite's 54 windows of 2 s with their idle baselines take about 2.5 on a
modern GPU; a budget that runs out stops before the next configuration, never inside a window,
and a configuration is not started when one as long as the longest so far would overrun it."""
WINDOW_S = 2.0
REPEATS = 3
IDLE_S = 1.0


class GpuBusy(FailedPrecondition):
    """Another process computes on the GPU to be calibrated: its work would be metered as ours."""


def _say(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class SuiteSettings:
    """What ``joulecast calibrate`` measures, where and how (times in seconds)."""

    db: Path
    device: str = "cuda"
    hardware: str | None = None
    budget_s: float = DEFAULT_BUDGET_S
    meter: str = "auto"
    trace: str | None = None
    plan: str = PLAN
    window_s: float = WINDOW_S
    repeats: int = REPEATS
    idle_s: float = IDLE_S
    allow_busy_gpu: bool = False
    core_watts: float | None = None
    started_at: float | None = None
    """``time.monotonic()`` when the budget started (default: when measuring starts): a command
    that counts its own start-up in the budget passes its start."""

    def check(self) -> None:
        if not self.budget_s > 0:
            raise InvalidArgument(f"--budget-s must be > 0, got {self.budget_s!r}")
        if not self.window_s > 0:
            raise InvalidArgument(f"the window must last > 0 s, got {self.window_s!r}")
        if self.repeats < 1:
            raise InvalidArgument(f"repeats must be at least 1, got {self.repeats!r}")
        if not (self.device == "cpu" or self.device.split(":")[0] == "cuda"):
            raise InvalidArgument(f"--device must be cuda, cuda:N or cpu, got {self.device!r}")


@dataclass(frozen=True)
class SuiteResult:
    """What a calibration measured: the hardware id its rows carry, the device's own name, the
    meter, and the sweep's summary (``stopped``: the budget ran out first)."""

    hardware: str
    device_name: str
    meter: str
    chosen_reason: str
    estimated: bool
    power_limit_w: float | None
    summary: SweepSummary
    seconds: float
    notes: tuple[str, ...] = field(default=())


def other_gpu_processes(meter: object) -> frozenset[int] | None:
    """Process ids other than this one holding a compute context on the metered GPU (None: the
    meter cannot tell). Asked before this process touches the GPU, so any id NVML lists (host
    ids inside a container) is another's."""
    query: Callable[[], frozenset[int] | None] | None = getattr(meter, "compute_pids", None)
    if query is None:
        return None
    pids = query()
    return None if pids is None else frozenset(pids) - {os.getpid()}


def refuse_busy_gpu(meter: object, device: str, allow: bool, say: Callable[[str], None]) -> None:
    """GpuBusy when another process computes on the GPU, unless ``allow`` (then a warning)."""
    others = other_gpu_processes(meter)
    if others is None:
        say(f"NOTE: NVML cannot list the processes on {device}; make sure nothing else runs on it")
        return
    if not others:
        return
    pids = ", ".join(str(p) for p in sorted(others))
    why = (
        f"{device} is in use by process(es) {pids}: the board's energy counter would count "
        "their work as the calibration's"
    )
    if not allow:
        raise GpuBusy(f"{why}; stop them, or pass --allow-busy-gpu to measure anyway")
    say(f"WARNING: {why} (measuring anyway: --allow-busy-gpu)")


def suite_hardware(
    device: str, device_name: str, explicit: str | None, trace: str | None = None
) -> str:
    """The rows' hardware id: ``explicit``; under a replayed ``trace`` ``replay-<trace>`` (a
    recording of other work is no GPU's measurement); on a GPU the catalog's id of the name
    NVML gives, else that name slugged; on a CPU ``cpu-<name>-f<family>m<model>`` (the
    collector's defaults). InvalidArgument when the id names a catalogued GPU these rows do
    not come from (:func:`joulecast.measurement.hardware_claim_problem`)."""
    if explicit:
        meter = "replay" if trace is not None else None
        problem = hardware_claim_problem(explicit, device, device_name, meter)
        if problem is not None:
            raise InvalidArgument(problem)
        return explicit
    if trace is not None:
        return sweep_hardware(device, "replay", trace)
    if device == "cpu":
        return default_hardware(device)
    return gpu_hardware_id(device_name)


def measure_suite(settings: SuiteSettings, say: Callable[[str], None] = _say) -> SuiteResult:
    """Measure the suite into ``settings.db`` (resuming what a previous run left) within the
    budget; returns what was measured. GpuBusy before any work when the GPU is in use."""
    settings.check()
    start = time.monotonic()
    plan = load_plan(settings.plan)
    meter = open_meter(
        kind=settings.meter,
        device=settings.device,
        trace=settings.trace,
        core_watts=settings.core_watts,
    )
    # The replay meter plays a GPU's trace back while the work runs on this CPU: a GPU's rows.
    gpu_metered = settings.device != "cpu" or settings.meter == "replay"
    with meter:
        if gpu_metered:
            # Before anything of ours touches the GPU: every compute process is another's.
            refuse_busy_gpu(meter, settings.device, settings.allow_busy_gpu, say)
            device_name = meter.describe().get("device_name") or settings.device
        else:
            device_name = cpu_name()
        hardware = suite_hardware(
            "cuda" if gpu_metered else "cpu",
            device_name,
            settings.hardware,
            settings.trace if settings.meter == "replay" else None,
        )
        if meter.name == "cpu-time":
            pin_torch_threads()  # a spinning worker thread would count as work
        banner = estimate_banner(meter)
        say(f"NOTE: {banner}" if banner else f"meter: {meter.chosen_reason}")
        limit = getattr(meter, "power_limit_w", None)
        power_limit_w = limit() if callable(limit) else None
        say(
            f"calibrating {hardware} ({device_name}"
            + (f", power limit {power_limit_w:g} W" if power_limit_w else "")
            + f"): {len(plan.runs)} runs x 2 phases x {settings.repeats} repeats, windows of "
            f"{settings.window_s:g} s, budget {settings.budget_s:g} s -> {settings.db}"
        )
        options = SweepOptions(
            device=settings.device,
            hardware=hardware,
            repeats=settings.repeats,
            resume=True,
            idle_s=settings.idle_s if not meter.estimated else 0.0,
            data_label="synthetic",
            window_s=settings.window_s,
            clock=window_clock(settings.device),
            stop_at=(start if settings.started_at is None else settings.started_at)
            + settings.budget_s,
        )
        clips = synthetic_clips(max(r.samples for r in plan.runs))
        settings.db.parent.mkdir(parents=True, exist_ok=True)
        with MeasurementStore(settings.db) as store, LineProgress() as progress:
            summary = run_serial(plan.runs, clips, store, meter, options, progress)
        estimated = bool(meter.estimated)
        reason = meter.chosen_reason
        name = meter.name
    result = SuiteResult(
        hardware=hardware,
        device_name=str(device_name),
        meter=name,
        chosen_reason=reason,
        estimated=estimated,
        power_limit_w=power_limit_w,
        summary=summary,
        seconds=time.monotonic() - start,
        notes=_notes(summary, settings),
    )
    log.info("calibration suite of %s: %s", hardware, summary)
    return result


def _notes(summary: SweepSummary, settings: SuiteSettings) -> tuple[str, ...]:
    """What the user must know about how the suite's run went."""
    notes: list[str] = []
    if summary.skipped:
        notes.append(f"{summary.skipped} rows were already measured in {settings.db} (resumed)")
    if summary.stopped:
        notes.append(
            f"the budget of {settings.budget_s:g} s ran out before the suite's end: the fit uses "
            "what was measured; rerun the same command to measure the rest"
        )
    if summary.shared:
        notes.append(
            f"{summary.shared} windows shared the meter with other work (their notes say how much)"
        )
    return tuple(notes)
