"""The measurement vocabulary: one stored row, its energy sources, and what makes a row valid.

Every package that makes, reads or receives measurements uses this module: the collector (rows it
measures), the importer (rows made elsewhere), the store (rows it writes), the server (rows sent
through AddMeasurements) and the estimator (rows it learns from). A row is checked here and
nowhere else, so "valid" means the same thing wherever data enters.

Energy sources. A measured source names the meter that read a hardware counter or power sensor;
anything starting with :data:`ESTIMATE_PREFIX` was modelled (e.g. CodeCarbon's TDP x load
fallback) and is never shown or served as a measurement. Any other name is refused.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
from dataclasses import dataclass, fields

from joulecast.errors import InvalidArgument
from joulecast.hardware_name import hardware_name_problem

SOURCE_NVML_COUNTER = "nvml-energy-counter"
"""The GPU's own energy counter (NVML, Volta and newer): difference over the window."""
SOURCE_NVML_INTEGRAL = "nvml-power-integral"
"""GPU power samples (NVML) integrated over the window."""
SOURCE_RAPL = "rapl"
"""The CPU package energy counter (Intel/AMD RAPL through powercap)."""
MEASURED_SOURCES = (SOURCE_NVML_COUNTER, SOURCE_NVML_INTEGRAL, SOURCE_RAPL)
"""Measured sources joulecast's own meters produce."""
SOURCE_CARBONTRACKER_NVML = "carbontracker-nvml"
"""GPU energy from carbontracker's NVML power samples (imported EC-NAS-Bench runs; the
derivation from carbontracker's records is in ``collector.ecnas``)."""
SOURCE_ZEUS_NVML_EPOCH = "zeus-nvml-epoch"
"""GPU energy of one whole training epoch from the Zeus NSDI '23 traces (You, Chung &
Chowdhury): the epoch's time x the GPU's average NVML board power over it, both measured once
per (workload, batch size, power limit) by the Zeus authors (their NVML power monitor). GPU
only: no CPU, DRAM or PUE; the epoch includes the data pipeline, so its stalls are in the
energy (``collector.import_zeus``)."""
EXTERNAL_MEASURED_SOURCES: tuple[str, ...] = (SOURCE_CARBONTRACKER_NVML, SOURCE_ZEUS_NVML_EPOCH)
"""Measured sources of other tools' meters, accepted from imports (each documented in
docs/IMPORT.md with the meter it names)."""
ESTIMATE_PREFIX = "estimate-"
"""Prefix of every modelled (not measured) energy source."""
CODECARBON_PREFIX = "codecarbon-"
CODECARBON_MEASURED_MODES = frozenset(
    {"intel_rapl", "windows_emi", "intel_power_gadget", "apple_powermetrics", "pynvml", "amdsmi"}
)
"""CodeCarbon's tracking modes that read a power sensor or energy counter; others are modelled."""

_SLUG = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


def machine_field(device: str) -> str:
    """The row field that names the machine a row of ``device`` ran on: the GPU's NVML name on
    cuda, the CPU's model otherwise."""
    return "device_name" if device.startswith("cuda") else "cpu_model"


def machine_name(row: Row) -> str | None:
    """The machine ``row`` says it ran on (:func:`machine_field`), None when it names none."""
    return getattr(row, machine_field(row.device)) or None


@functools.lru_cache(maxsize=4096)
def catalogued_gpu_claim(hardware: str) -> str | None:
    """The name of the catalogued GPU that hardware id ``hardware`` names (as ``predict`` and a
    calibration would read it: ``h200``, ``t4``), None when it names none or several. Cached:
    every row checked asks, and a name no GPU has costs a scan of the catalog."""
    from joulecast.hardware import find_one_gpu

    spec = find_one_gpu(hardware)
    return None if spec is None else spec.name


def hardware_claim_problem(
    hardware: str, device: str, device_name: str | None, meter: str | None
) -> str | None:
    """Why rows of ``device`` (its NVML name ``device_name``), metered by ``meter``, cannot be
    named ``hardware``; None when they can. A hardware id that names a catalogued GPU claims
    that GPU: its rows are fitted and answered as that GPU's, so they must come from it. A
    replayed trace is a recording of other work, CPU rows are no GPU's, and another GPU's rows
    are not this one's."""
    claimed = catalogued_gpu_claim(hardware)
    if claimed is None:
        return None
    head = f"hardware {hardware!r} names the catalogued GPU {claimed}, and"
    if meter == "replay":
        return (
            f"{head} these rows are metered by a replayed trace: a recording of other work, "
            "never that GPU's measurement (leave --hardware out: they are named replay-<trace>)"
        )
    if not device.startswith("cuda"):
        return f"{head} these rows ran on {device!r}: name them another way"
    if device_name:
        ran_on = catalogued_gpu_claim(device_name)
        if ran_on != claimed:
            return (
                f"{head} these rows ran on {device_name!r}: they would be fitted and answered "
                "as another GPU's (leave --hardware out: the GPU's own id is the default)"
            )
    return None


def is_estimate(source: str) -> bool:
    """True when an energy source names an estimate rather than a measurement."""
    return source.startswith(ESTIMATE_PREFIX)


def codecarbon_slug(mode: str) -> str:
    return mode.replace("_", "-").replace(" ", "-").lower()


CODECARBON_MEASURED = tuple(sorted({codecarbon_slug(m) for m in CODECARBON_MEASURED_MODES}))
"""``codecarbon-<slug>`` sources that are measurements (plus ``codecarbon-total`` when every
component CodeCarbon tracked was measured)."""


def codecarbon_source(mode: str) -> str:
    """Our energy source for a CodeCarbon mode: ``codecarbon-<mode>`` or ``estimate-...``."""
    slug = codecarbon_slug(mode)
    if mode in CODECARBON_MEASURED_MODES:
        return f"{CODECARBON_PREFIX}{slug}"
    return f"{ESTIMATE_PREFIX}{CODECARBON_PREFIX}{slug}"


def source_problem(source: str) -> str | None:
    """None when ``source`` is a known energy source, else why not (listing the known ones)."""
    if source in MEASURED_SOURCES or source in EXTERNAL_MEASURED_SOURCES:
        return None
    if source.startswith(ESTIMATE_PREFIX):
        rest = source[len(ESTIMATE_PREFIX) :]
        return None if _SLUG.match(rest) else f"estimate source {source!r} has no valid name"
    if source.startswith(CODECARBON_PREFIX):
        mode = source[len(CODECARBON_PREFIX) :]
        if mode in CODECARBON_MEASURED or mode == "total":
            return None
        return (
            f"CodeCarbon mode {mode!r} is not a measurement (measured modes: "
            f"{', '.join(CODECARBON_MEASURED)}); label modelled energy "
            f"'{ESTIMATE_PREFIX}codecarbon-{mode}'"
        )
    known = ", ".join((*MEASURED_SOURCES, *EXTERNAL_MEASURED_SOURCES))
    return (
        f"unknown energy source {source!r}; known: {known}, codecarbon-<measured mode> or "
        f"{ESTIMATE_PREFIX}<name> (docs/IMPORT.md)"
    )


@dataclass(frozen=True)
class TraceSample:
    """One sample of the background sampler. Units in the names; ``None`` = not available."""

    t_s: float
    power_w: float | None = None
    gpu_util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_mib: float | None = None


@dataclass(frozen=True)
class Row:
    """One stored measurement (or failure) of one phase of one run.

    Energy in joules, durations in seconds, power in watts, utilisation in percent.
    ``power_limit_w`` is the GPU power limit the work ran under (None: the board's default or
    not known); energy per sample depends on it as much as on the batch size.
    ``energy_is_estimate`` is true whenever ``energy_source`` starts with ``estimate-``.
    What else shared the meter: ``cpu_s`` (the process's CPU seconds in the window, cpu-time
    meter), ``others_busy_cores`` (cores other work kept busy meanwhile) and
    ``gpu_other_processes`` (other compute processes on the GPU at either edge of the window; a
    lower bound when the notes say so); None where the meter did not record it.
    ``precision`` is the arithmetic the work ran in, one of :data:`PRECISIONS` (None: not known,
    read as PyTorch's default, ``fp32``): TF32 and mixed precision run matrix work on tensor
    cores, which changes what the same graph costs.
    The power trace is not a column of this record: the store keeps it compressed beside the row.
    """

    run_key: str
    plan: str
    config_id: str
    family: str
    variant: str
    num_layers: str
    hidden_size: str
    phase: str
    repeat: int
    samples: int
    batch_size: int
    epochs: int
    status: str
    hardware: str
    device: str
    error: str | None = None
    flops_forward: int | None = None
    flops_train: int | None = None
    params: int | None = None
    duration_s: float | None = None
    energy_j: float | None = None
    energy_source: str | None = None
    energy_is_estimate: bool | None = None
    energy_dynamic_j: float | None = None
    idle_power_w: float | None = None
    power_mean_w: float | None = None
    power_limit_w: float | None = None
    gpu_util_mean: float | None = None
    mem_util_mean: float | None = None
    mem_used_mean_mib: float | None = None
    short_window: bool | None = None
    codecarbon_energy_j: float | None = None
    codecarbon_mode: str | None = None
    meter: str | None = None
    notes: str | None = None
    device_name: str | None = None
    driver: str | None = None
    cpu_model: str | None = None
    software: str | None = None
    data: str | None = None
    graph_sha256: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    cpu_s: float | None = None
    others_busy_cores: float | None = None
    gpu_other_processes: int | None = None
    precision: str | None = None


ROW_COLUMNS = tuple(f.name for f in fields(Row))
WORK_AND_COST_COLUMNS = (
    "params",
    "flops_forward",
    "flops_train",
    "batch_size",
    "samples",
    "epochs",
    "duration_s",
    "energy_j",
    "power_mean_w",
)
"""The columns of a row that say how much work it ran and what that cost, in the order the
summaries of imported stores write them (``examples/ecnas``, ``examples/zeus``; their CSVs are
shipped under artifacts/measurements, so the order stays)."""
PHASES = ("train", "test")
"""The two phases of a run: every definition of them in joulecast imports this one."""
STATUSES = ("ok", "failed")
PRECISIONS = ("fp32", "tf32", "amp-fp16", "amp-bf16")
"""``fp32``: PyTorch's default from 1.12 on (cuDNN convolutions and recurrences on TF32 tensor
cores from Ampere on, matrix products in FP32); ``tf32``: FP32 tensors with matrix products
on TF32 tensor cores too (``torch.backends.cuda.matmul.allow_tf32 = True``,
``torch.set_float32_matmul_precision("high")``, or PyTorch 1.7-1.11's default), the same as
``fp32`` on a GPU without TF32; ``amp-fp16``, ``amp-bf16``: automatic mixed precision
(autocast) in that half type."""


def graph_sha256(onnx_bytes: bytes) -> str:
    """The id a graph is stored and sent under (``Row.graph_sha256`` refers to it): the sha256
    of its bytes, hex."""
    return hashlib.sha256(onnx_bytes).hexdigest()


MAX_TEXT = 64 * 1024
"""Longest text field of a row, in characters (``software`` holds a JSON of versions)."""
MAX_KEY = 512
MAX_COUNT = 10**12
"""Largest sample count or batch size a row may state."""
MAX_EPOCHS = 100_000
MIN_POWER_W = 0.01
MAX_POWER_W = 10_000.0
"""Implied average power (energy / duration) of one device that any real row stays inside."""
MIN_SECONDS_PER_SAMPLE = 1e-9
"""No device processes a sample of a neural network in less than a nanosecond."""
_POSITIVE = ("samples", "batch_size", "epochs")
_REQUIRED_TEXT = ("run_key", "plan", "config_id", "family", "hardware", "device")
_NON_NEGATIVE_FLOATS = (
    "duration_s",
    "energy_j",
    "idle_power_w",
    "power_mean_w",
    "mem_used_mean_mib",
    "codecarbon_energy_j",
    "cpu_s",
    "others_busy_cores",
)
_PERCENT = ("gpu_util_mean", "mem_util_mean")


def check_row(row: Row, *, require_graph: bool = True) -> Row:
    """Validate ``row``; return it with ``energy_is_estimate`` filled in from its source.

    Raises :class:`InvalidArgument` naming the field and what is wrong. An ``ok`` row must carry
    a known energy source, a positive energy and duration whose ratio (average power) lies in
    [:data:`MIN_POWER_W`, :data:`MAX_POWER_W`], and (with ``require_graph``) its graph's sha256.
    """
    for name in _REQUIRED_TEXT:
        if not getattr(row, name):
            raise InvalidArgument(f"{name} is empty")
    if len(row.run_key) > MAX_KEY:
        raise InvalidArgument(f"run_key is longer than {MAX_KEY} characters")
    problem = hardware_name_problem(row.hardware) or hardware_claim_problem(
        row.hardware, row.device, row.device_name, row.meter
    )
    if problem is not None:
        raise InvalidArgument(problem)
    for f in dataclasses.fields(row):
        value = getattr(row, f.name)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise InvalidArgument(f"{f.name} is longer than {MAX_TEXT} characters")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgument(f"{f.name} is not a finite number: {value}")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_COUNT * 1000:
            raise InvalidArgument(f"{f.name} is out of range: {value}")
    if row.phase not in PHASES:
        raise InvalidArgument(f"phase must be 'train' or 'test', got {row.phase!r}")
    if row.status not in STATUSES:
        raise InvalidArgument(f"status must be 'ok' or 'failed', got {row.status!r}")
    if row.precision is not None and row.precision not in PRECISIONS:
        raise InvalidArgument(f"precision must be one of {PRECISIONS}, got {row.precision!r}")
    if row.repeat < 0:
        raise InvalidArgument(f"repeat must be >= 0, got {row.repeat}")
    for name in _POSITIVE:
        value = getattr(row, name)
        if not 1 <= value <= MAX_COUNT:
            raise InvalidArgument(f"{name} must be in [1, {MAX_COUNT}], got {value}")
    if row.epochs > MAX_EPOCHS:
        raise InvalidArgument(f"epochs must be in [1, {MAX_EPOCHS}], got {row.epochs}")
    for name in _NON_NEGATIVE_FLOATS:
        value = getattr(row, name)
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0, got {value}")
    if row.power_limit_w is not None and not 0 < row.power_limit_w <= MAX_POWER_W:
        raise InvalidArgument(
            f"power_limit_w must be in (0, {MAX_POWER_W:g}] W when set, got {row.power_limit_w}"
        )
    for name in _PERCENT:
        value = getattr(row, name)
        if value is not None and not 0 <= value <= 100:
            raise InvalidArgument(f"{name} is a percentage in [0, 100], got {value}")
    for name in ("flops_forward", "flops_train", "params", "gpu_other_processes"):
        value = getattr(row, name)
        if value is not None and value < 0:
            raise InvalidArgument(f"{name} must be >= 0, got {value}")
    estimate = None
    if row.energy_source is not None:
        problem = source_problem(row.energy_source)
        if problem is not None:
            raise InvalidArgument(f"energy_source: {problem}")
        estimate = is_estimate(row.energy_source)
    if estimate is not None and row.energy_is_estimate not in (None, estimate):
        raise InvalidArgument(
            f"energy_is_estimate={row.energy_is_estimate} contradicts energy_source "
            f"{row.energy_source!r} (estimates are named {ESTIMATE_PREFIX}…)"
        )
    if row.status == "ok":
        _check_ok(row, require_graph)
    if estimate is not None and row.energy_is_estimate is None:
        row = dataclasses.replace(row, energy_is_estimate=estimate)
    return row


def _check_ok(row: Row, require_graph: bool) -> None:
    for name in ("energy_j", "duration_s", "energy_source"):
        if getattr(row, name) is None:
            raise InvalidArgument(f"an 'ok' row needs {name}")
    assert row.energy_j is not None and row.duration_s is not None
    if row.duration_s <= 0:
        raise InvalidArgument(f"duration_s must be > 0, got {row.duration_s}")
    if row.energy_j <= 0:
        raise InvalidArgument(f"energy_j must be > 0 in an 'ok' row, got {row.energy_j}")
    power_w = row.energy_j / row.duration_s
    if not MIN_POWER_W <= power_w <= MAX_POWER_W:
        raise InvalidArgument(
            f"energy_j / duration_s = {power_w:.3g} W is outside what one device draws "
            f"([{MIN_POWER_W}, {MAX_POWER_W:g}] W)"
        )
    per_sample_s = row.duration_s / (float(row.samples) * float(row.epochs))
    if per_sample_s < MIN_SECONDS_PER_SAMPLE:
        raise InvalidArgument(
            f"duration_s / (samples x epochs) = {per_sample_s:.3g} s per sample is faster "
            f"than any device (>= {MIN_SECONDS_PER_SAMPLE:g} s)"
        )
    if require_graph and not row.graph_sha256:
        raise InvalidArgument("an 'ok' row needs its weightless graph")
