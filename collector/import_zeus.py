"""The Zeus NSDI '23 power traces read as import records (docs/IMPORT.md, "Zeus NSDI '23").

A folder holding ``summary_power_<gpu>.csv`` files (ml-energy/zeus,
``examples/research_reproducibility/zeus_nsdi23/trace/``): per GPU, one line per (dataset,
network, batch size, optimizer, power limit) with the time of one training epoch and the GPU's
average NVML power over it. Each line becomes one ``train`` record of one epoch: energy =
``time_per_epoch`` x ``average_power`` (source ``zeus-nvml-epoch``), the power limit in
``power_limit_w``, the workload's samples per epoch and weightless graph from
:mod:`collector.zeus_workloads`. ``summary_train.csv`` (epochs to a target metric) is not a
measurement of energy and is not read.

Which boards. The README of the traces gives a 250 W maximum for the V100 and the P100, and the
power limits swept go from 100 W (V100) and 125 W (P100) to 250 W: the PCIe boards' ranges
(the SXM2 V100 and P100 go to 300 W). Memory, taking each sweep to stop at the largest batch
that fit: the 24 GB Quadro RTX 6000 did not train ResNet-50 at 360 nor DeepSpeech2 at 156, so a
sample takes more than 66 MB and 145 MB there, and the V100's batches of 360 and 192 need more
than 24 GB: the 32 GB V100 PCIe. BERT at 384 tokens did not fit at 64 on the V100 nor at 48 on
the RTX 6000: more than 0.46 GB a sample besides 1.75 GB of weights, gradients and Adam state,
so the P100's batch of 24 needs more than 12.9 GB: the 16 GB P100 PCIe, not the 12 GB one.

Any other GPU's file is read through the hardware catalog: its tag (``summary_power_<tag>``)
must name one catalogued GPU, or ``gpus`` (``joulecast import --zeus-gpu TAG=ID``) says which;
its maximum power is the catalog's settable maximum, else its default limit, and its NVML name
the catalog's. On a GPU with TF32 tensor cores (Ampere on) the FP32 workloads' rows say
``tf32``: the traces were made with Zeus's image, PyTorch 1.10.1, whose
``torch.backends.cuda.matmul.allow_tf32`` was True by default (it is False from 1.12), so
their matrix products ran on TF32 tensor cores; each such row's notes say it was assumed.

Every line is checked: a missing or non-numeric field, a time, power or power limit that is not
positive, a power limit or average power above the board's maximum, an average power above the
limit by more than NVML's ±5 %, an unknown workload, or a second line with the same keys is a
bad record naming its file and line. A power above the limit within NVML's accuracy is kept and
said so in the notes (the limit holds the board's own power average, which NVML reads to ±5 %).
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.import_file import MAX_JSON_BYTES, open_lines
from collector.importer import GraphCache, Record
from collector.zeus_workloads import find_workload, workload_graph
from joulecast.errors import InvalidArgument
from joulecast.hardware import AmbiguousGpuName, find_gpu
from joulecast.measurement import SOURCE_ZEUS_NVML_EPOCH

logger = logging.getLogger(__name__)

FILE_PREFIX = "summary_power_"
COLUMNS = (
    "dataset",
    "network",
    "batch_size",
    "optimizer",
    "power_limit",
    "time_per_epoch",
    "average_power",
)
NVML_POWER_TOLERANCE = 0.05
"""NVML's stated power accuracy (±5 %): an average this far above the limit is a contradiction."""
PLAN = "zeus-nsdi23"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class ZeusGpu:
    """A GPU of the traces: its file tag, the catalog id its rows are stored under, NVML's
    name for the board and its maximum power limit in watts."""

    tag: str
    hardware: str
    device_name: str
    max_power_w: float
    tf32: bool = False
    """TF32 tensor cores: the traces' PyTorch (1.10.1) ran FP32 matrix products on them."""


GPUS: Mapping[str, ZeusGpu] = {
    "v100": ZeusGpu("v100", "v100-pcie-32gb", "Tesla V100-PCIE-32GB", 250.0),
    "p100": ZeusGpu("p100", "p100-pcie-16gb", "Tesla P100-PCIE-16GB", 250.0),
    "rtx6000": ZeusGpu("rtx6000", "quadro-rtx6000", "Quadro RTX 6000", 260.0),
}
"""The three GPUs of the traces (see the module docstring for why these boards)."""
TRACE_PYTORCH = "1.10.1"
"""The PyTorch of Zeus's Docker image, which the traces were made with."""


class UnknownZeusGpu(InvalidArgument):
    """A trace file whose tag names no single catalogued GPU."""


def zeus_gpu(tag: str, gpus: Mapping[str, str] | None = None) -> ZeusGpu:
    """The GPU of ``summary_power_<tag>.csv``: one of :data:`GPUS`, else the catalogued GPU
    that ``gpus[tag]`` (a catalog id or name) or the tag itself names. UnknownZeusGpu when it
    names none, or several."""
    gpus = gpus or {}
    if tag in GPUS and tag not in gpus:
        return GPUS[tag]
    name = gpus.get(tag, tag)
    hint = f"name it with --zeus-gpu {tag}=ID (`joulecast hardware` lists the ids)"
    try:
        spec = find_gpu(name)
    except AmbiguousGpuName as exc:
        raise UnknownZeusGpu(
            f"GPU {tag!r} names several catalogued GPUs ({', '.join(exc.candidates)}): {hint}"
        ) from None
    if spec is None:
        raise UnknownZeusGpu(f"unknown GPU {tag!r}: no catalogued GPU has that name; {hint}")
    return ZeusGpu(
        tag,
        spec.id,
        # NVML's name, as a row measured on the board would carry it (the catalog's display
        # name where it lists none)
        spec.nvml_names[0] if spec.nvml_names else spec.name,
        float(spec.power_limit_max_w or spec.power_limit_w),
        tf32=spec.has_tf32,
    )


Progress = Callable[[int, int], None]
"""``progress(done, total)`` while the workloads' graphs are built."""


def looks_like_zeus(path: str | Path) -> bool:
    """True for a folder holding at least one ``summary_power_*.csv``."""
    path = Path(path)
    return path.is_dir() and any(path.glob(f"{FILE_PREFIX}*.csv"))


def graph_ref(dataset: str, network: str) -> str:
    """How records name a workload's rebuilt graph."""
    return f"zeus:{dataset}/{network}"


@dataclass
class ZeusRead:
    """Records of one Zeus trace folder and the graphs they name."""

    records: list[Record] = field(default_factory=list)
    graphs: GraphCache = field(default_factory=GraphCache)
    files: list[str] = field(default_factory=list)
    above_limit: list[str] = field(default_factory=list)
    """Where a line's average power exceeds its limit (within NVML's accuracy)."""
    workloads: int = 0


class _BadLine(ValueError):
    """A trace line that cannot be imported; the message says why."""


def _number(values: Mapping[str, str | None], name: str) -> float:
    raw = values.get(name)
    if raw is None or not raw.strip():
        raise _BadLine(f"{name} is missing")
    try:
        number = float(raw)
    except ValueError:
        raise _BadLine(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(number):
        raise _BadLine(f"{name}={raw!r} is not a finite number")
    if number <= 0:
        raise _BadLine(f"{name}={raw!r} must be > 0")
    return number


def _name(values: Mapping[str, str | None], name: str) -> str:
    raw = (values.get(name) or "").strip()
    if not raw:
        raise _BadLine(f"{name} is missing")
    if not _NAME.match(raw):
        raise _BadLine(f"{name}={raw!r} is not a name (lower-case letters, digits, '_.-')")
    return raw


@dataclass(frozen=True)
class _Line:
    """One checked trace line."""

    gpu: ZeusGpu
    where: str
    dataset: str
    network: str
    batch_size: int
    optimizer: str
    power_limit_w: float
    time_per_epoch_s: float
    average_power_w: float

    @property
    def key(self) -> tuple[object, ...]:
        return (self.dataset, self.network, self.batch_size, self.optimizer, self.power_limit_w)

    @property
    def run_id(self) -> str:
        return (
            f"{self.gpu.tag}/{self.dataset}/{self.network}/{self.optimizer}/"
            f"b{self.batch_size}/pl{self.power_limit_w:g}"
        )


def _check(gpu: ZeusGpu, where: str, values: Mapping[str, str | None]) -> _Line:
    if None in values:
        raise _BadLine("more fields than the header has columns")
    dataset, network = _name(values, "dataset"), _name(values, "network")
    batch = _number(values, "batch_size")
    if batch != int(batch):
        raise _BadLine(f"batch_size={values['batch_size']!r} is not an integer")
    optimizer = _name(values, "optimizer")
    limit_w = _number(values, "power_limit")
    time_s = _number(values, "time_per_epoch")
    power_w = _number(values, "average_power")
    board = f"the {gpu.device_name}'s maximum of {gpu.max_power_w:g} W"
    if limit_w > gpu.max_power_w:
        raise _BadLine(f"power_limit={limit_w:g} W is above {board}")
    if power_w > gpu.max_power_w:
        raise _BadLine(f"average_power={power_w:g} W is above {board}")
    if power_w > limit_w * (1 + NVML_POWER_TOLERANCE):
        raise _BadLine(
            f"average_power={power_w:g} W is above the {limit_w:g} W power limit by more than "
            f"NVML's ±{NVML_POWER_TOLERANCE:.0%}"
        )
    try:
        find_workload(dataset, network)
    except InvalidArgument as exc:
        raise _BadLine(str(exc)) from None
    return _Line(gpu, where, dataset, network, int(batch), optimizer, limit_w, time_s, power_w)


def _notes(line: _Line) -> str:
    parts = [
        f"Zeus NSDI '23 trace {line.where}: {line.time_per_epoch_s:g} s x "
        f"{line.average_power_w:.4f} W (NVML, GPU only, one epoch with its data loading, "
        f"measured once) at a {line.power_limit_w:g} W power limit"
    ]
    if line.average_power_w > line.power_limit_w:
        excess = line.average_power_w / line.power_limit_w - 1
        parts.append(
            f"average power {excess:.1%} above the power limit (within NVML's "
            f"±{NVML_POWER_TOLERANCE:.0%})"
        )
    parts += [f"assumed {a}" for a in find_workload(line.dataset, line.network).assumptions]
    if line.gpu.tag not in GPUS:
        parts.append(
            f"assumed board: {line.gpu.hardware} from the file's tag {line.gpu.tag!r} "
            f"(catalog maximum {line.gpu.max_power_w:g} W)"
        )
    if _precision(line) == "tf32":
        parts.append(
            f"assumed precision tf32: PyTorch {TRACE_PYTORCH} (Zeus's image) ran FP32 matrix "
            "products on TF32 tensor cores by default"
        )
    return "; ".join(parts)


def _values(line: _Line) -> dict[str, object]:
    workload = find_workload(line.dataset, line.network)
    return {
        "graph": graph_ref(line.dataset, line.network),
        "phase": "train",
        "batch_size": line.batch_size,
        "samples": workload.samples_per_epoch,
        "epochs": 1,
        "repeat": 0,
        "energy_j": line.time_per_epoch_s * line.average_power_w,
        "energy_source": SOURCE_ZEUS_NVML_EPOCH,
        "duration_s": line.time_per_epoch_s,
        "hardware": line.gpu.hardware,
        # The power limit is part of the configuration: rows that differ only in it are not
        # repeats of one another.
        "config_id": f"zeus/{line.run_id.split('/', 1)[1]}",
        "run_id": line.run_id,
        "power_mean_w": line.average_power_w,
        "power_limit_w": line.power_limit_w,
        "device": "cuda",
        "device_name": line.gpu.device_name,
        "meter": "zeus_monitor (NVML power samples)",
        "software": f"PyTorch; {workload.task} trainer of the Zeus NSDI '23 workloads",
        "data": workload.data,
        "precision": _precision(line),
        "plan": PLAN,
        "variant": line.optimizer,
        "num_layers": workload.num_layers,
        "hidden_size": workload.hidden_size,
        "notes": _notes(line),
    }


def _precision(line: _Line) -> str:
    precision = find_workload(line.dataset, line.network).precision
    return "tf32" if precision == "fp32" and line.gpu.tf32 else precision


def _read_file(
    path: Path,
    out: ZeusRead,
    seen: dict[tuple[object, ...], str],
    gpus: Mapping[str, str] | None = None,
) -> None:
    tag = path.stem[len(FILE_PREFIX) :]
    try:
        gpu = zeus_gpu(tag, gpus)
    except UnknownZeusGpu as exc:
        out.records.append(Record(f"{path.name}:1", {"__error__": str(exc)}, path.parent))
        return
    # Looked at before it is read, then read bounded, like every file an import reads.
    with open_lines(path, "Zeus trace file", MAX_JSON_BYTES) as fh:
        reader = csv.DictReader(fh)
        header = tuple(reader.fieldnames or ())
        if header != COLUMNS:
            raise InvalidArgument(
                f"{path.name}:1: header {','.join(header) or '(none)'} is not {','.join(COLUMNS)}"
            )
        line_no = reader.line_num
        for values in reader:
            where = f"{path.name}:{line_no + 1}"
            line_no = reader.line_num
            try:
                line = _check(gpu, where, values)
                first = seen.setdefault((gpu.tag, *line.key), where)
                if first != where:
                    raise _BadLine(
                        f"same dataset, network, batch size, optimizer and limit as {first}"
                    )
            except _BadLine as exc:
                out.records.append(Record(where, {"__error__": str(exc)}, path.parent))
                continue
            if line.average_power_w > line.power_limit_w:
                out.above_limit.append(where)
            out.records.append(Record(where, _values(line), path.parent))


def read_zeus(
    root: str | Path,
    progress: Progress | None = None,
    gpus: Mapping[str, str] | None = None,
) -> ZeusRead:
    """Read a Zeus trace folder: one record per good line, the graphs of the workloads they
    name built once each (a bad line becomes a bad record naming its file and line).

    ``gpus`` maps a file's tag to the catalogued GPU it ran on (:func:`zeus_gpu`)."""
    root = Path(root)
    if not looks_like_zeus(root):
        raise InvalidArgument(f"{root} is not a Zeus trace folder (no {FILE_PREFIX}*.csv)")
    out = ZeusRead()
    seen: dict[tuple[object, ...], str] = {}
    for path in sorted(root.glob(f"{FILE_PREFIX}*.csv")):
        out.files.append(path.name)
        _read_file(path, out, seen, gpus)
    refs = sorted({str(r.values["graph"]) for r in out.records if "graph" in r.values})
    for done, ref in enumerate(refs, start=1):
        dataset, network = ref.removeprefix("zeus:").split("/")
        out.graphs.add(ref, workload_graph(find_workload(dataset, network)))
        if progress is not None:
            progress(done, len(refs))
    out.workloads = len(refs)
    return out
