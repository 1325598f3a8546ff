"""The Ray executor: each configuration-phase of a sweep is one task on a Ray cluster's worker.

A task measures one run's phase, every repeat of it still missing (each repeat with a fresh
seeded model and its idle baseline, through :func:`collector.runner.measure_run`, as the serial
executor does), on a device it owns alone: a whole GPU (``num_gpus=1``: two tasks on one GPU
would read each other's joules) or, on CPU, a whole node (one unit of the custom resource
``joulecast_node``, which each CPU worker offers once). The worker opens its own meter and
takes its own hardware id, so a cluster of mixed machines yields rows per hardware.

The driver is the only writer of the store: a task returns its rows, traces and weightless
graphs, and the driver writes them in one transaction as soon as the task finishes. A killed
driver loses only the tasks in flight (``--resume`` runs them again, never twice what is
stored); a worker that dies mid-task makes Ray run the task again (``MAX_RETRIES``), and a
task's result reaches the driver once.

Resume across hardware: without ``--hardware``, a (run, phase, repeat) already stored by any
worker of the same device kind counts as done, whichever hardware measured it.

Ray is an optional extra (``pip install 'joulecast[ray]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any

import torch

from collector.data import Clip, SpectrogramSet
from collector.hardware import sweep_hardware
from collector.meters.cputime import pin_torch_threads
from collector.meters.nvml_device import import_pynvml
from collector.meters.sampler import DEFAULT_INTERVAL_S
from collector.meters.select import default_idle_s, open_meter
from collector.plans import RunSpec
from collector.runner import (
    Progress,
    RunContext,
    SweepOptions,
    SweepSummary,
    another_machine_message,
    failure_reason,
    measure_run,
    refuse_without_resume,
    row_key,
    stored_machines,
    stored_windows,
    sweep_dataset,
)
from joulecast.errors import FailedPrecondition, InvalidArgument
from joulecast.measurement import PHASES, Row, TraceSample, graph_sha256, machine_name
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

NODE_RESOURCE = "joulecast_node"
"""Custom Ray resource a CPU worker offers once (``ray start --resources``): a task takes it
whole, so one measurement at a time runs on a CPU node."""
MAX_RETRIES = 3
"""Times Ray runs a task again when its worker process or node dies."""
INSTALL_HINT = "--executor ray needs Ray, which is not installed here: pip install 'joulecast[ray]'"
ANY_HARDWARE = "*"
LOOPBACK = "127.0.0.1"
LOCAL_RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
"""Environment of a local Ray instance. On Linux Ray replaces a loopback node IP by the address
it would reach other hosts from, and its servers then listen on every interface; in its
single-machine mode (the first variable, what Ray does on laptops) the node IP stays 127.0.0.1
and every server listens on loopback only. The second keeps Ray from reporting usage."""


def import_ray() -> ModuleType:
    """The ``ray`` module, or FailedPrecondition saying what to install."""
    try:
        # Ray is an optional extra: imported only when a sweep asks for this executor
        import ray
        import ray.exceptions
    except ImportError as exc:
        raise FailedPrecondition(INSTALL_HINT) from exc
    return ray


@dataclass(frozen=True)
class MeterSpec:
    """How a worker opens its meter (a meter holds threads and device handles: never shipped).
    Fields as in :func:`collector.meters.select.open_meter`; ``trace`` is a path on the worker."""

    kind: str = "auto"
    sample_interval_s: float = DEFAULT_INTERVAL_S
    with_codecarbon: bool = False
    trace: str | None = None
    core_watts: float | None = None


@dataclass(frozen=True)
class Task:
    """One configuration-phase: the repeats of one run's phase that a worker measures.

    ``hardware`` is the rows' hardware id when the user gave one, else None (the worker's own);
    ``idle_s`` None takes the meter's default; ``windows`` are the timed protocol's stored
    window sizes of this run and phase (by window key, any hardware).
    """

    spec: RunSpec
    phase: str
    repeats: tuple[int, ...]
    options: SweepOptions
    meter: MeterSpec
    hardware: str | None = None
    idle_s: float | None = None
    windows: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        spec = self.spec
        return f"{spec.config.config_id} s{spec.samples} b{spec.batch_size} {self.phase}"


@dataclass(frozen=True)
class TaskResult:
    """What a worker sends back: rows with their traces, graphs, and who measured them.
    ``worker_s`` = seconds the task took on its worker (meter opening included)."""

    rows: tuple[tuple[Row, tuple[TraceSample, ...]], ...]
    graphs: tuple[bytes, ...]
    hardware: str
    node: str
    measured: int
    failed: int
    estimated: bool
    failures: tuple[str, ...]
    worker_s: float
    shared: int = 0


@dataclass(frozen=True)
class TaskTiming:
    """One finished task as the driver saw it: ``round_trip_s`` from submission to result,
    ``worker_s`` of it spent in the task on its worker."""

    label: str
    node: str
    round_trip_s: float
    worker_s: float


@dataclass
class RaySweepSummary(SweepSummary):
    tasks: list[TaskTiming] = field(default_factory=list)
    nodes: set[str] = field(default_factory=set)


class CollectedRows:
    """A worker's :class:`~collector.runner.RowSink`: keeps rows and graphs for the driver."""

    def __init__(self) -> None:
        self.rows: list[tuple[Row, tuple[TraceSample, ...]]] = []
        self.graphs: dict[str, bytes] = {}

    def put_graph(self, onnx_bytes: bytes) -> str:
        sha = graph_sha256(onnx_bytes)
        self.graphs[sha] = onnx_bytes
        return sha

    def put_row(self, row: Row, trace: tuple[TraceSample, ...] = ()) -> None:
        self.rows.append((row, tuple(trace)))


def measure_task(task: Task, dataset: SpectrogramSet) -> TaskResult:
    """Measure ``task`` in this process (a Ray worker) and return its rows; writes nothing."""
    began = time.perf_counter()
    options = task.options
    on_cuda = options.device.startswith("cuda")
    hardware = sweep_hardware(options.device, task.meter.kind, task.meter.trace, task.hardware)
    meter = open_meter(
        kind=task.meter.kind,
        device=options.device,
        gpu_index=assigned_gpu_nvml_index() if on_cuda else 0,
        sample_interval_s=task.meter.sample_interval_s,
        with_codecarbon=task.meter.with_codecarbon,
        trace=task.meter.trace,
        core_watts=task.meter.core_watts,
    )
    sink = CollectedRows()
    summary = SweepSummary()
    with meter:
        if meter.name == "cpu-time":
            pin_torch_threads()  # a spinning worker thread would count as work
        elif not on_cuda:
            torch.set_num_threads(len(os.sched_getaffinity(0)))  # Ray pins tasks to 1 thread
        idle_s = task.idle_s if task.idle_s is not None else default_idle_s(meter.name)
        options = replace(options, hardware=hardware, idle_s=idle_s, stop_at=None)
        device = torch.device(options.device)
        ctx = RunContext(sink, meter, options, device, set(), {}, dict(task.windows))
        for repeat in task.repeats:
            measure_run(task.spec, repeat, dataset, ctx, summary, Progress(), (task.phase,))
    return TaskResult(
        rows=tuple(sink.rows),
        graphs=tuple(sink.graphs.values()),
        hardware=hardware,
        node=platform.node(),
        measured=summary.measured,
        failed=summary.failed,
        estimated=summary.estimated,
        failures=tuple(summary.failures),
        worker_s=time.perf_counter() - began,
        shared=summary.shared,
    )


def assigned_gpu_nvml_index() -> int:
    """NVML index of the GPU this process's CUDA device 0 is. Ray shows a task only its GPU
    (``CUDA_VISIBLE_DEVICES``) but NVML counts every GPU of the node: match them by UUID."""
    wanted = str(torch.cuda.get_device_properties(0).uuid).lower().removeprefix("gpu-")
    nvml = import_pynvml()
    nvml.nvmlInit()
    try:
        for index in range(nvml.nvmlDeviceGetCount()):
            uuid = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index))
            text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            if text.lower().removeprefix("gpu-") == wanted:
                return index
    finally:
        nvml.nvmlShutdown()
    raise FailedPrecondition(f"NVML sees no GPU with the UUID of CUDA device 0 ({wanted})")


def unit_key(run_key: str) -> str:
    """A run key with its hardware id replaced by ``*``: which (run, phase, repeat, device) it
    is, whatever worker measured it."""
    head, _, tail = run_key.rpartition("@")
    return f"{head}@{ANY_HARDWARE}/{tail.rsplit('/', 1)[-1]}"


@dataclass(frozen=True)
class _Plan:
    tasks: tuple[Task, ...]
    rows: int
    skipped: int
    failed_keys: dict[str, list[str]]
    """Stored failed run keys by :func:`unit_key` (a retry on other hardware replaces them)."""


def plan_tasks(
    runs: Sequence[RunSpec],
    store: MeasurementStore,
    options: SweepOptions,
    meter: MeterSpec,
    hardware: str | None,
    idle_s: float | None,
) -> _Plan:
    """The configuration-phases with repeats not stored yet, one task each, in plan order."""
    keyed = replace(options, hardware=hardware or ANY_HARDWARE)
    match: Callable[[str], str] = (lambda key: key) if hardware else unit_key
    all_keys = store.all_keys()
    stored = {match(k) for k in all_keys}
    done_keys = store.done_keys()
    done = {match(k) for k in done_keys}
    failed: dict[str, list[str]] = {}
    for key in all_keys - done_keys:
        failed.setdefault(match(key), []).append(key)
    planned = {
        (spec.key, phase): [
            (r, match(row_key(spec, phase, r, keyed))) for r in range(options.repeats)
        ]
        for spec in runs
        for phase in PHASES
    }
    keys = [k for pairs in planned.values() for _, k in pairs]
    refuse_without_resume(store, sum(1 for k in keys if k in stored), options)
    windows = stored_windows(store) if options.window_s else {}
    tasks = []
    for spec in runs:
        for phase in PHASES:
            repeats = tuple(r for r, k in planned[spec.key, phase] if k not in done)
            if repeats:
                prefix = f"{spec.key}/{phase}@"
                mine = {k: n for k, n in windows.items() if k.startswith(prefix)}
                tasks.append(Task(spec, phase, repeats, options, meter, hardware, idle_s, mine))
    skipped = sum(1 for k in keys if k in done)
    return _Plan(tuple(tasks), len(keys) - skipped, skipped, failed)


def run_ray(
    runs: Sequence[RunSpec],
    clips: Sequence[Clip],
    store: MeasurementStore,
    meter: MeterSpec,
    options: SweepOptions,
    progress: Progress | None = None,
    *,
    address: str | None = None,
    hardware: str | None = None,
    idle_s: float | None = None,
    max_in_flight: int | None = None,
    say: Callable[[str], None] = log.info,
) -> RaySweepSummary:
    """Measure every (run, phase, repeat) not stored yet on a Ray cluster; rows go to ``store``.

    Args:
        address: an existing cluster (``host:6379`` or ``ray://host:10001``); None starts a
            local Ray instance on this machine, on loopback only (:func:`local_ray`), or uses
            the one this process already joined.
        hardware: the rows' hardware id; None: each worker's own.
        idle_s: idle baseline seconds; None: 2 s with a power meter, else none.
        max_in_flight: tasks submitted at once (default: twice the devices the cluster offers).
        say: receives one line naming the cluster and the work.
    """
    ray = import_ray()
    if re.fullmatch(r"cuda:\d+", options.device):
        raise InvalidArgument("with --executor ray pass --device cuda: Ray gives each task a GPU")
    progress = progress or Progress()
    plan = plan_tasks(runs, store, options, meter, hardware, idle_s)
    summary = RaySweepSummary(skipped=plan.skipped)
    progress.sweep_started(plan.rows)
    if not plan.tasks:
        return summary
    dataset = sweep_dataset([t.spec for t in plan.tasks], clips, options.features)
    with contextlib.ExitStack() as stack:
        _join(ray, address, stack)
        resource, offered = _devices(ray, options.device, address)
        say(
            f"ray: {len(plan.tasks)} tasks ({plan.rows} rows) on {len(ray.nodes())} node(s) "
            f"offering {offered:g} {resource}"
        )
        remote = _remote(ray, resource)
        dataset_ref = ray.put(dataset)
        limit = max_in_flight or max(1, 2 * int(offered))
        _drive(ray, remote, dataset_ref, plan, store, options, limit, summary, progress)
    return summary


def _join(ray: ModuleType, address: str | None, stack: contextlib.ExitStack) -> None:
    """Connect this process to Ray unless it is already (``stack`` disconnects it)."""
    if ray.is_initialized():
        return
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address:
            ray.init(address=address, **quiet)
            stack.callback(ray.shutdown)
        else:
            stack.enter_context(local_ray(ray, {NODE_RESOURCE: 1}, **quiet))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FailedPrecondition(f"cannot reach {where}: {first}") from exc


@contextlib.contextmanager
def local_ray(ray: ModuleType, resources: dict[str, float], **init: Any) -> Iterator[Any]:
    """A Ray instance on this machine, on loopback only: node IP 127.0.0.1, every server
    listening on 127.0.0.1, no dashboard, no usage report. Yields ``ray.init``'s context
    (its ``address_info["gcs_address"]`` lets other drivers join); stops it on exit.
    ``init`` = more keyword arguments of ``ray.init`` (e.g. ``num_cpus``)."""
    # Ray is an optional extra, as in import_ray: this runs only once ray was imported
    from ray._private import ray_constants

    saved_env = {name: os.environ.get(name) for name in LOCAL_RAY_ENV}
    saved_cluster = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOCAL_RAY_ENV)  # the servers Ray starts inherit it
    ray_constants.ENABLE_RAY_CLUSTER = False  # ray read the variable when it was imported
    try:
        context = _init_local(ray, resources, init)
        try:
            node_ip = context.address_info["node_ip_address"]
            if node_ip != LOOPBACK:
                raise FailedPrecondition(
                    f"the local Ray instance took the node IP {node_ip}, not {LOOPBACK}"
                )
            yield context
        finally:
            ray.shutdown()
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_cluster
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


LOCAL_START_TRIES = 2
"""A local instance whose raylet did not register within Ray's 30 s (a loaded machine: two
test workers on two cores) is started once more before the error reaches the user."""


def _init_local(ray: ModuleType, resources: dict[str, float], init: dict[str, Any]) -> Any:
    attempt = 1
    while True:
        try:
            return ray.init(
                address="local",
                _node_ip_address=LOOPBACK,
                include_dashboard=False,
                resources=resources,
                **init,
            )
        except Exception as exc:  # Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc) or attempt >= LOCAL_START_TRIES:
                raise
            log.warning("the local Ray instance timed out starting (%s); starting it again", exc)
            ray.shutdown()
            attempt += 1


def _devices(ray: ModuleType, device: str, address: str | None) -> tuple[str, float]:
    """The resource a task holds (GPU, or the node resource on CPU) and how much is offered."""
    resource = "GPU" if device.startswith("cuda") else NODE_RESOURCE
    offered = float(ray.cluster_resources().get(resource, 0.0))
    if offered >= 1:
        return resource, offered
    where = f"the Ray cluster at {address}" if address else "the local Ray instance"
    if resource == "GPU":
        raise FailedPrecondition(f"{where} has no GPU; use --device cpu or add GPU workers")
    raise FailedPrecondition(
        f"no node of {where} offers the resource {NODE_RESOURCE}; start each CPU worker with "
        f"ray start --address=HEAD --resources='{{\"{NODE_RESOURCE}\": 1}}'"
    )


def _remote(ray: ModuleType, resource: str) -> Any:
    """``measure_task`` as a Ray task holding a whole device, retried when its worker dies."""
    fn = ray.remote(measure_task)
    common = {"max_retries": MAX_RETRIES, "retry_exceptions": False, "num_cpus": 1}
    if resource == "GPU":
        return fn.options(num_gpus=1, **common)
    return fn.options(resources={NODE_RESOURCE: 1}, **common)


def _drive(
    ray: ModuleType,
    remote: Any,
    dataset_ref: Any,
    plan: _Plan,
    store: MeasurementStore,
    options: SweepOptions,
    limit: int,
    summary: RaySweepSummary,
    progress: Progress,
) -> None:
    """Submit tasks (at most ``limit`` at once) and write each result as it arrives."""
    queue = deque(plan.tasks)
    in_flight: dict[Any, tuple[Task, float]] = {}
    machines: dict[tuple[str, bool], set[str]] = {}
    while queue or in_flight:
        while queue and len(in_flight) < limit:
            if options.stop_at is not None and time.monotonic() >= options.stop_at:
                summary.stopped = True
                queue.clear()
                break
            task = queue.popleft()
            in_flight[remote.remote(task, dataset_ref)] = (task, time.perf_counter())
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            task, sent = in_flight.pop(ref)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:
                _lost(task, exc, summary, progress)
                continue
            refuse_another_machine(store, task, result, machines)
            _write(store, task, result, plan.failed_keys, summary, progress)
            summary.tasks.append(
                TaskTiming(task.label, result.node, time.perf_counter() - sent, result.worker_s)
            )


def refuse_another_machine(
    store: MeasurementStore,
    task: Task,
    result: TaskResult,
    machines: dict[tuple[str, bool], set[str]],
) -> None:
    """FailedPrecondition, before ``result`` is stored, when its rows bear a hardware id whose
    rows (stored, or written earlier in this sweep) another machine measured: a cluster of
    mixed machines under one ``--hardware``, or a store resumed from another machine, would
    otherwise fit two machines as one. ``machines`` caches what the store holds, per
    (hardware id, on a GPU), and learns each result's machine."""
    for row, _ in result.rows:
        on_gpu = row.device.startswith("cuda")
        here = machine_name(row)
        if not here:
            continue
        key = (row.hardware, on_gpu)
        if key not in machines:
            machines[key] = stored_machines(store, row.hardware, on_gpu)
        others = sorted(machines[key] - {here})
        if others:
            raise FailedPrecondition(
                another_machine_message(store, row.hardware, others[0], here)
                + f" (the worker on {result.node} measured {task.label}; nothing of it was "
                "stored, the rows stored before it stay)"
            )
        machines[key].add(here)


def _write(
    store: MeasurementStore,
    task: Task,
    result: TaskResult,
    failed_keys: dict[str, list[str]],
    summary: RaySweepSummary,
    progress: Progress,
) -> None:
    """Store one task's graphs and rows (rows in one transaction), then count them."""
    match: Callable[[str], str] = (lambda key: key) if task.hardware else unit_key
    stale = [
        key
        for row, _ in result.rows
        if row.status == "ok"
        for key in failed_keys.pop(match(row.run_key), [])
        if key != row.run_key
    ]
    try:
        if result.graphs:
            store.put_graphs(list(result.graphs))
        if stale:
            store.delete_rows(stale)  # failed on other hardware, now measured
        store.put_rows(list(result.rows))
    except sqlite3.IntegrityError as exc:
        raise FailedPrecondition(
            f"{store.path}: rows of {task.label} were stored meanwhile by another writer "
            f"({exc}); run one sweep per store at a time"
        ) from exc
    summary.measured += result.measured
    summary.failed += result.failed
    summary.estimated |= result.estimated
    summary.shared += result.shared
    summary.failures.extend(f"{f} (on {result.node})" for f in result.failures)
    summary.hardware.add(result.hardware)
    summary.nodes.add(result.node)
    for row, _ in result.rows:
        progress.row_done(f"{task.label} r{row.repeat} @{row.hardware}", ok=row.status == "ok")


def _lost(task: Task, exc: Exception, summary: RaySweepSummary, progress: Progress) -> None:
    """A task that returned no rows (its code raised, or its worker died more than
    ``MAX_RETRIES`` times): counted as failed, nothing stored, so ``--resume`` tries again."""
    cause = getattr(exc, "cause", None)
    reason = failure_reason(cause if isinstance(cause, BaseException) else exc)
    log.warning("%s: no rows came back: %s", task.label, reason)
    summary.failed += len(task.repeats)
    summary.failures.append(f"{task.label}: {reason} (nothing stored)")
    for repeat in task.repeats:
        progress.row_done(f"{task.label} r{repeat}", ok=False)
