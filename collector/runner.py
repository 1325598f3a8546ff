"""The sweep runner: for each run of a plan, train one epoch and test one pass under a meter.

Per configuration: build the model, count its cost (DeepSpeed, or the project's graph profiler
when DeepSpeed is absent), store its weightless ONNX graph, measure the idle baseline, then for
each phase: one warm-up step outside the window, then the measured window (device synchronised
at both edges), then one atomic row. The serial executor interleaves repeats (repeat 0 of every
configuration, then repeat 1, ...), so that slow drifts of the machine's load show up as spread
between repeats rather than as a bias of one configuration.

The timed protocol (``window_s``): instead of the plan's samples, a window holds the whole
number of batches that makes it last ``window_s`` seconds (timed on warm batches before the
first repeat, reused by the later ones; batches cycle through the plan's clips), and the row
records the samples actually used, so that energy per sample is what is measured.

Executors (``collector/executors/``) decide where and in which order runs are measured: the
serial one in this process, the Ray one on a cluster's workers. Both measure a run through
:func:`measure_run`, which writes through a :class:`RowSink` (the store itself, or a worker's
collector whose rows the driver writes), so a row means the same thing whatever ran it.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from collector.data import Clip, SpectrogramSet
from collector.flops import Cost, deepspeed_available, model_cost
from collector.hardware import cpu_model, software_versions
from collector.meters.base import EnergyMeter, Measurement
from collector.models import INPUT_SHAPE, build_model
from collector.plans import RunSpec
from collector.window import MARGIN, PROBE_S, samples_for_window
from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import (
    PHASES,
    ROW_COLUMNS,
    Row,
    TraceSample,
    hardware_claim_problem,
    machine_field,
    machine_name,
)
from joulecast.store import MeasurementStore
from joulecast.weightless import export_weightless

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepOptions:
    """How to run a sweep. ``idle_s`` = seconds of idle baseline before each configuration."""

    device: str = "cpu"
    hardware: str = "cpu"
    repeats: int = 1
    resume: bool = False
    features: str = "cached"
    idle_s: float = 0.0
    seed: int = 0
    lr: float = 1e-3
    data_label: str = "synthetic"
    store_graphs: bool = True
    window_s: float | None = None
    """Timed protocol: each window lasts at least this many seconds (None: the plan's samples)."""
    clock: Callable[[], float] = time.process_time
    """The clock that times probe batches for the timed protocol (this process's CPU seconds)."""
    stop_at: float | None = None
    """``time.monotonic()`` after which no new configuration starts (a campaign's deadline)."""


@dataclass
class SweepSummary:
    measured: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    estimated: bool = False
    shared: int = 0
    """Rows whose window other work shared (other GPU processes, busy cores beside a CPU-time
    estimate): their notes say how much."""
    stopped: bool = False
    """True when the deadline (``stop_at``) cut the sweep: rerun with resume to finish it."""
    hardware: set[str] = field(default_factory=set)
    """Hardware ids of the rows measured (a cluster of mixed machines has several)."""


class Progress:
    """Receives progress events; the CLI draws bars, tests stay silent."""

    def sweep_started(self, total_rows: int) -> None: ...
    def phase_started(self, label: str, batches: int) -> None: ...
    def batch_done(self) -> None: ...
    def row_done(self, label: str, ok: bool) -> None: ...


def row_key(spec: RunSpec, phase: str, repeat: int, options: SweepOptions) -> str:
    return f"{spec.key}/{phase}/r{repeat}@{options.hardware}/{options.device}"


def _sync_fn(device: torch.device) -> Callable[[], None] | None:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def plan_keys(runs: Sequence[RunSpec], options: SweepOptions) -> list[str]:
    return [
        row_key(spec, phase, r, options)
        for spec in runs
        for r in range(options.repeats)
        for phase in PHASES
    ]


def refuse_without_resume(store: MeasurementStore, existing: int, options: SweepOptions) -> None:
    """FailedPrecondition when the store already holds ``existing`` rows of this sweep and the
    caller did not ask to resume (no silent mixing of two sweeps)."""
    if existing and not options.resume:
        raise FailedPrecondition(
            f"{store.path} already holds {existing} rows of this sweep; "
            "pass --resume to continue it"
        )


def refuse_another_machine(
    store: MeasurementStore, options: SweepOptions, meter: EnergyMeter
) -> None:
    """FailedPrecondition when the store holds rows of this sweep's hardware id that another
    machine measured (another GPU model on cuda, another CPU model on cpu): resuming would
    skip what that machine measured as if this one had, and fit the two as one hardware."""
    facts = meter.describe()
    on_gpu = options.device.startswith("cuda")
    here = facts.get(machine_field(options.device)) or ("" if on_gpu else cpu_model())
    if not here:
        return
    others = sorted(stored_machines(store, options.hardware, on_gpu) - {here})
    if others:
        raise FailedPrecondition(another_machine_message(store, options.hardware, others[0], here))


def refuse_a_gpu_it_is_not(options: SweepOptions, meter: EnergyMeter) -> None:
    """InvalidArgument, before anything is measured, when this sweep's hardware id names a
    catalogued GPU that is not the one measured (a CPU, a replayed trace, another GPU): every
    row would be refused when stored (:func:`joulecast.measurement.check_row`)."""
    facts = meter.describe()
    problem = hardware_claim_problem(
        options.hardware, options.device, facts.get("device_name"), meter.name
    )
    if problem is not None:
        raise InvalidArgument(problem)


def stored_machines(store: MeasurementStore, hardware: str, on_gpu: bool) -> set[str]:
    """The machines (:func:`joulecast.measurement.machine_name`) that measured ``store``'s rows
    of ``hardware`` on a GPU (``on_gpu``) or a CPU, failed rows included."""
    return {
        name
        for row in store.rows(status=None, hardware=hardware)
        if row.device.startswith("cuda") == on_gpu and (name := machine_name(row))
    }


def another_machine_message(store: MeasurementStore, hardware: str, other: str, here: str) -> str:
    return (
        f"{store.path} holds rows of {hardware} measured on {other!r}, and this "
        f"machine is {here!r}: name this machine's rows with --hardware NAME, or use "
        "another --db"
    )


def sweep_dataset(todo: Sequence[RunSpec], clips: Sequence[Clip], features: str) -> SpectrogramSet:
    """The clips the runs still to measure need (each run uses the first ``samples``)."""
    max_samples = max(spec.samples for spec in todo)
    if max_samples > len(clips):
        raise InvalidArgument(f"{max_samples} samples asked, the data set has {len(clips)} clips")
    return SpectrogramSet(clips[:max_samples], features)


class RowSink(Protocol):
    """Where :func:`measure_run` puts graphs and rows: a :class:`MeasurementStore`, or a
    worker's collector that hands them to the driver (the only writer of the store)."""

    def put_graph(self, onnx_bytes: bytes) -> str: ...

    def put_row(self, row: Row, trace: tuple[TraceSample, ...] = ()) -> None: ...


@dataclass
class RunContext:
    """What every run of one sweep shares."""

    sink: RowSink
    meter: EnergyMeter
    options: SweepOptions
    device: torch.device
    done: set[str]
    costs: dict[str, tuple[Cost, str | None]]
    windows: dict[str, int]
    """Samples per window already chosen, by run key without its repeat (timed protocol)."""


_REPEAT = re.compile(r"/r\d+@")


def window_key(run_key: str) -> str:
    return _REPEAT.sub("@", run_key)


def stored_windows(store: MeasurementStore) -> dict[str, int]:
    """Samples of the windows a resumed sweep already chose (its later repeats reuse them)."""
    return {window_key(row.run_key): row.samples for row in store.rows()}


def measure_run(
    spec: RunSpec,
    repeat: int,
    dataset: SpectrogramSet,
    ctx: RunContext,
    summary: SweepSummary,
    progress: Progress,
    phases: Sequence[str] = PHASES,
) -> None:
    """Measure repeat ``repeat`` of ``spec``'s ``phases`` not yet done: a fresh seeded model,
    its cost and graph, the idle baseline, then one window and one row per phase. A failure
    makes a failed row of every phase left (the reason in ``summary.failures``)."""
    config, options = spec.config, ctx.options
    label = f"{config.config_id} s{spec.samples} b{spec.batch_size}"
    pending = [p for p in phases if row_key(spec, p, repeat, options) not in ctx.done]
    if not pending:
        return
    cost: Cost | None = None
    graph_sha: str | None = None
    model: nn.Module | None = None
    try:
        torch.manual_seed(options.seed)
        model = build_model(config)
        if config.config_id not in ctx.costs:
            sha = None
            if options.store_graphs or _needs_graph_cost():
                onnx = _weightless(model)
                sha = ctx.sink.put_graph(onnx) if options.store_graphs else None
            else:
                onnx = None
            ctx.costs[config.config_id] = (model_cost(model, onnx), sha)
        cost, graph_sha = ctx.costs[config.config_id]
        model.to(ctx.device)
        if options.idle_s > 0:
            ctx.meter.calibrate_idle(options.idle_s)  # later windows carry idle and dynamic energy
        subset = Subset(dataset, range(spec.samples))
        for phase in list(pending):
            key = row_key(spec, phase, repeat, options)
            measurement, samples, started_at = _measure_phase(
                phase, model, subset, spec, ctx, progress, f"{label} {phase} r{repeat}", key
            )
            row = _row(spec, phase, repeat, options, ctx.meter, cost, graph_sha, measurement)
            row = replace(row, samples=samples, started_at=started_at)
            ctx.sink.put_row(row, measurement.trace)
            summary.measured += 1
            summary.estimated |= measurement.is_estimate
            summary.shared += measurement.shared
            progress.row_done(f"{label} {phase}", ok=True)
            pending = pending[1:]
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        reason = failure_reason(exc)
        log.warning("%s failed: %s", label, reason)
        log.debug("%s", traceback.format_exc())
        for phase in pending:
            ctx.sink.put_row(_row(spec, phase, repeat, options, ctx.meter, cost, graph_sha, reason))
            summary.failed += 1
            progress.row_done(f"{label} {phase}", ok=False)
        what = label if tuple(phases) == PHASES else f"{label} {'+'.join(phases)}"
        summary.failures.append(f"{what} r{repeat}: {reason}")
    finally:
        del model
        gc.collect()
        if ctx.device.type == "cuda":
            torch.cuda.empty_cache()


def _needs_graph_cost() -> bool:
    return not deepspeed_available()


def _weightless(model: nn.Module) -> bytes:
    return export_weightless(model, torch.zeros(1, *INPUT_SHAPE))


def failure_reason(exc: BaseException) -> str:
    """One line (at most 500 characters) saying why a run failed; out of memory named so."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory: {text}"
    return f"{type(exc).__name__}: {text}"[:500]


def _loader(subset: Subset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(subset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _cycle(loader: DataLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, epoch after epoch, without end (the timed protocol's supply)."""
    while True:
        yield from loader


def _measure_phase(
    phase: str,
    model: nn.Module,
    subset: Subset,
    spec: RunSpec,
    ctx: RunContext,
    progress: Progress,
    label: str,
    key: str,
) -> tuple[Measurement, int, str]:
    """Warm up, then measure one window of ``phase``. Returns it, the samples it held and
    when (UTC, ISO 8601) the window began."""
    options, device, meter = ctx.options, ctx.device, ctx.meter
    loss_fn = nn.BCELoss()
    sync = _sync_fn(device)
    loader = _loader(subset, spec.batch_size, shuffle=phase == "train", seed=options.seed)
    training = phase == "train"
    optimizer = torch.optim.Adam(model.parameters(), lr=options.lr) if training else None
    model.train(training)

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if optimizer is not None:
            _train_step(model, optimizer, loss_fn, x.to(device), y.to(device))
        else:
            loss_fn(model(x.to(device)), y.to(device)).item()

    with torch.set_grad_enabled(training):
        batches = _cycle(loader)
        warm_s = _timed(options.clock, sync, step, [next(batches)])  # warm-up, outside the window
        if options.window_s:
            n_batches = _window_batches(ctx, key, spec, warm_s, step, batches, sync)
        else:
            n_batches = len(loader) * spec.epochs
        progress.phase_started(label, n_batches)
        started_at = _now()
        meter.begin_window(label, sync=sync)
        for _ in range(n_batches):
            step(*next(batches))
            progress.batch_done()
        measurement = meter.end_window(label, sync=sync)
    samples = n_batches * spec.batch_size if options.window_s else spec.samples
    return measurement, samples, started_at


def _timed(
    clock: Callable[[], float],
    sync: Callable[[], None] | None,
    step: Callable[[torch.Tensor, torch.Tensor], None],
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> float:
    """Seconds (on ``clock``) that ``step`` takes over ``batches``."""
    if sync is not None:
        sync()
    start = clock()
    for x, y in batches:
        step(x, y)
    if sync is not None:
        sync()
    return clock() - start


def _window_batches(
    ctx: RunContext,
    key: str,
    spec: RunSpec,
    warm_s: float,
    step: Callable[[torch.Tensor, torch.Tensor], None],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    sync: Callable[[], None] | None,
) -> int:
    """Batches of a window lasting ``window_s``: chosen once per run and phase, then reused.

    A warm-up batch that alone lasts 3 x the target makes a one-batch window (no probe: the
    largest models take many seconds a batch, and a first step is at most about twice slower
    than the next); otherwise warm batches are timed for ``PROBE_S``.
    """
    target_s = float(ctx.options.window_s or 0)
    chosen = ctx.windows.get(window_key(key))
    if chosen is not None:
        return max(1, chosen // spec.batch_size)
    if warm_s >= 3 * target_s:
        n_batches = 1
    else:
        probe: list[tuple[torch.Tensor, torch.Tensor]] = []
        spent_s = 0.0
        while spent_s < PROBE_S:
            batch = [next(batches)]
            spent_s += _timed(ctx.options.clock, sync, step, batch)
            probe.extend(batch)
        per_batch_s = max(spent_s / len(probe), 1e-9)
        n_batches, _ = samples_for_window(per_batch_s, spec.batch_size, MARGIN * target_s)
    ctx.windows[window_key(key)] = n_batches * spec.batch_size
    log.debug("%s: %d batches a window", key, n_batches)
    return n_batches


def _train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()


def _context(
    spec: RunSpec, phase: str, repeat: int, options: SweepOptions, meter: EnergyMeter
) -> dict[str, object]:
    config = spec.config
    facts = meter.describe()
    return {
        "run_key": row_key(spec, phase, repeat, options),
        "plan": spec.plan,
        "config_id": config.config_id,
        "family": config.family,
        "variant": "frames" if config.rnn_input == "frames" else "paper",
        "num_layers": config.num_layers_text,
        "hidden_size": config.hidden_size_text,
        "phase": phase,
        "repeat": repeat,
        "samples": spec.samples,
        "batch_size": spec.batch_size,
        "epochs": spec.epochs,
        "hardware": options.hardware,
        "device": options.device,
        "meter": meter.name,
        "device_name": facts.get("device_name"),
        "driver": facts.get("driver"),
        "cpu_model": facts.get("cpu_model") or cpu_model(),
        "software": software_versions(),
        "data": options.data_label,
        # The sweep trains and tests without autocast: every matrix product in FP32.
        "precision": "fp32",
    }


_MEASURED = tuple(
    f.name for f in fields(Measurement) if f.name in ROW_COLUMNS and f.name != "notes"
)
"""Columns a window fills under its own names (its notes are joined; its trace is stored apart)."""


def _row(
    spec: RunSpec,
    phase: str,
    repeat: int,
    options: SweepOptions,
    meter: EnergyMeter,
    cost: Cost | None,
    graph_sha: str | None,
    outcome: Measurement | str,
) -> Row:
    """The row of one phase: ``outcome`` is its window's measurement, or why it failed."""
    if isinstance(outcome, Measurement):
        result: dict[str, object] = {name: getattr(outcome, name) for name in _MEASURED}
        result |= {
            "status": "ok",
            "energy_is_estimate": outcome.is_estimate,
            "notes": "; ".join(outcome.notes) or None,
        }
    else:
        result = {"status": "failed", "error": outcome}
    return Row(
        **_context(spec, phase, repeat, options, meter),
        **result,
        **(asdict(cost) if cost else {}),
        graph_sha256=graph_sha,
        finished_at=_now(),
    )
