"""The sweep runner: for each run of a plan, train one epoch and test one pass under a meter.

Per configuration: build the model, count its cost with DeepSpeed, store its weightless ONNX
graph, measure the idle baseline, then for each phase and repeat: one warm-up step outside the
window, then the measured window (device synchronised at both edges), then one atomic row.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from collector.data import Clip, SpectrogramSet
from collector.flops import Cost, deepspeed_cost
from collector.hardware import cpu_model, software_versions
from collector.meters.base import EnergyMeter, Measurement
from collector.models import INPUT_SHAPE, build_model
from collector.plans import RunSpec
from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import Row, is_estimate
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

PHASES = ("train", "test")


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


@dataclass
class SweepSummary:
    measured: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    estimated: bool = False


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


def run_sweep(
    runs: Sequence[RunSpec],
    clips: Sequence[Clip],
    store: MeasurementStore,
    meter: EnergyMeter,
    options: SweepOptions,
    progress: Progress | None = None,
) -> SweepSummary:
    """Measure every (run, phase, repeat) not already stored. Returns what happened.

    Without ``resume``, a store that already holds rows of this sweep is refused (no silent
    mixing); with it, finished rows are skipped and failed ones are tried again.
    """
    progress = progress or Progress()
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise FailedPrecondition("--device cuda asked, but torch sees no CUDA device")
    keys = plan_keys(runs, options)
    existing = store.all_keys() & set(keys)
    if existing and not options.resume:
        raise FailedPrecondition(
            f"{store.path} already holds {len(existing)} rows of this sweep; "
            "pass --resume to continue it"
        )
    done = store.done_keys()
    summary = SweepSummary(skipped=len(done & set(keys)))
    todo = [spec for spec in runs if any(k not in done for k in plan_keys([spec], options))]
    progress.sweep_started(len(keys) - summary.skipped)
    if not todo:
        return summary
    max_samples = max(spec.samples for spec in todo)
    if max_samples > len(clips):
        raise InvalidArgument(f"{max_samples} samples asked, the data set has {len(clips)} clips")
    dataset = SpectrogramSet(clips[:max_samples], options.features)
    costs: dict[str, tuple[Cost, str | None]] = {}
    for spec in todo:
        _run_one(spec, dataset, store, meter, options, device, done, costs, summary, progress)
    return summary


def _run_one(
    spec: RunSpec,
    dataset: SpectrogramSet,
    store: MeasurementStore,
    meter: EnergyMeter,
    options: SweepOptions,
    device: torch.device,
    done: set[str],
    costs: dict[str, tuple[Cost, str | None]],
    summary: SweepSummary,
    progress: Progress,
) -> None:
    config = spec.config
    label = f"{config.config_id} s{spec.samples} b{spec.batch_size}"
    pending = [
        (phase, r)
        for r in range(options.repeats)
        for phase in PHASES
        if row_key(spec, phase, r, options) not in done
    ]
    cost: Cost | None = None
    graph_sha: str | None = None
    model: nn.Module | None = None
    try:
        torch.manual_seed(options.seed)
        model = build_model(config)
        if config.config_id not in costs:
            cost = deepspeed_cost(model)
            sha = store.put_graph(_weightless(model)) if options.store_graphs else None
            costs[config.config_id] = (cost, sha)
        cost, graph_sha = costs[config.config_id]
        model.to(device)
        if options.idle_s > 0:
            meter.calibrate_idle(options.idle_s)  # later windows carry idle and dynamic energy
        subset = Subset(dataset, range(spec.samples))
        for phase, repeat in pending:
            measurement = _measure_phase(
                phase,
                model,
                subset,
                spec,
                meter,
                options,
                device,
                progress,
                f"{label} {phase} r{repeat}",
            )
            row = _row(spec, phase, repeat, options, meter, cost, graph_sha, measurement)
            store.put_row(row, measurement.trace)
            summary.measured += 1
            summary.estimated |= measurement.is_estimate
            progress.row_done(f"{label} {phase}", ok=True)
            pending = pending[1:]
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        reason = _reason(exc)
        log.warning("%s failed: %s", label, reason)
        log.debug("%s", traceback.format_exc())
        for phase, repeat in pending:
            store.put_row(_failed_row(spec, phase, repeat, options, meter, cost, graph_sha, reason))
            summary.failed += 1
            progress.row_done(f"{label} {phase}", ok=False)
        summary.failures.append(f"{label}: {reason}")
    finally:
        del model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _weightless(model: nn.Module) -> bytes:
    from joulecast.weightless import export_weightless

    return export_weightless(model, torch.zeros(1, *INPUT_SHAPE))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower():
        return f"out of memory: {text}"
    return f"{type(exc).__name__}: {text}"[:500]


def _loader(subset: Subset, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(subset, batch_size=batch_size, shuffle=shuffle, generator=generator)


def _measure_phase(
    phase: str,
    model: nn.Module,
    subset: Subset,
    spec: RunSpec,
    meter: EnergyMeter,
    options: SweepOptions,
    device: torch.device,
    progress: Progress,
    label: str,
) -> Measurement:
    loss_fn = nn.BCELoss()
    sync = _sync_fn(device)
    loader = _loader(subset, spec.batch_size, shuffle=phase == "train", seed=options.seed)
    if phase == "train":
        optimizer = torch.optim.Adam(model.parameters(), lr=options.lr)
        model.train()
        x, y = next(iter(loader))  # warm-up step, outside the window
        _train_step(model, optimizer, loss_fn, x.to(device), y.to(device))
        progress.phase_started(label, len(loader) * spec.epochs)
        meter.begin_window(label, sync=sync)
        for _ in range(spec.epochs):
            for x, y in loader:
                _train_step(model, optimizer, loss_fn, x.to(device), y.to(device))
                progress.batch_done()
        measurement = meter.end_window(label, sync=sync)
        del optimizer
        return measurement
    model.eval()
    with torch.no_grad():
        x, y = next(iter(loader))  # warm-up pass, outside the window
        loss_fn(model(x.to(device)), y.to(device))
        progress.phase_started(label, len(loader) * spec.epochs)
        meter.begin_window(label, sync=sync)
        for _ in range(spec.epochs):
            for x, y in loader:
                loss_fn(model(x.to(device)), y.to(device)).item()
                progress.batch_done()
        return meter.end_window(label, sync=sync)


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
    }


def _row(
    spec: RunSpec,
    phase: str,
    repeat: int,
    options: SweepOptions,
    meter: EnergyMeter,
    cost: Cost,
    graph_sha: str | None,
    m: Measurement,
) -> Row:
    return Row(
        **_context(spec, phase, repeat, options, meter),
        status="ok",
        flops_forward=cost.flops_forward,
        flops_train=cost.flops_train,
        params=cost.params,
        duration_s=m.duration_s,
        energy_j=m.energy_j,
        energy_source=m.energy_source,
        energy_is_estimate=is_estimate(m.energy_source),
        energy_dynamic_j=m.energy_dynamic_j,
        idle_power_w=m.idle_power_w,
        power_mean_w=m.power_mean_w,
        gpu_util_mean=m.gpu_util_mean,
        mem_util_mean=m.mem_util_mean,
        mem_used_mean_mib=m.mem_used_mean_mib,
        short_window=m.short_window,
        codecarbon_energy_j=m.codecarbon_energy_j,
        codecarbon_mode=m.codecarbon_mode,
        notes="; ".join(m.notes) or None,
        graph_sha256=graph_sha,
        finished_at=_now(),
    )


def _failed_row(
    spec: RunSpec,
    phase: str,
    repeat: int,
    options: SweepOptions,
    meter: EnergyMeter,
    cost: Cost | None,
    graph_sha: str | None,
    reason: str,
) -> Row:
    return Row(
        **_context(spec, phase, repeat, options, meter),
        status="failed",
        error=reason,
        flops_forward=cost.flops_forward if cost else None,
        flops_train=cost.flops_train if cost else None,
        params=cost.params if cost else None,
        graph_sha256=graph_sha,
        finished_at=_now(),
    )
