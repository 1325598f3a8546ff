"""EC-NAS-Bench's folder read as import records (docs/IMPORT.md, "EC-NAS-Bench").

The folder holds ``graphs/generated_graphs_*.json`` (``{hash: [adjacency matrix, ops]}``) and
``train_model_results/energy/<space>/<n>_epochs/<xx>/<hash>/repeat_<k>/results.json``. Every
architecture is rebuilt in PyTorch (:mod:`collector.nasbench101`), exported weightless through
the project's own path and profiled by the profiler that serves predictions; its parameter
count must equal the run's ``trainable_params``. Every run becomes one ``train`` record whose
energy is the GPU's energy of training derived by :func:`collector.ecnas.derive`; runs whose
derivation is unreliable are dropped (listed and counted, never imported).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from collector.ecnas import BATCH_SIZE, Run, RunError, derive, overhead_power_w, read_run
from collector.import_file import MAX_JSON_BYTES, read_bytes, short
from collector.importer import GraphCache, Problem, Record
from collector.nasbench101 import CellSpec, Network, export_onnx
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_graph
from joulecast.measurement import SOURCE_CARBONTRACKER_NVML

logger = logging.getLogger(__name__)

HARDWARE = "quadro-rtx6000"
"""Default hardware name of EC-NAS-Bench rows (one NVIDIA Quadro RTX 6000)."""
HARDWARE_GPU = "Quadro RTX 6000"
"""What the GPU's NVML name must contain for rows of :data:`HARDWARE`."""
RESULTS_GLOB = "train_model_results/energy/*/*_epochs/*/*/repeat_*/results.json"
_HASH = re.compile(r"^[0-9a-f]{32}$")
_REPEAT = re.compile(r"^repeat_(\d+)$")

Progress = Callable[[int, int], None]
"""``progress(done, total)`` while architectures are rebuilt."""


def looks_like_ecnas(path: str | Path) -> bool:
    """True for a folder with EC-NAS-Bench's ``graphs/`` and ``train_model_results/``."""
    path = Path(path)
    return (path / "graphs").is_dir() and (path / "train_model_results").is_dir()


def graph_ref(arch_hash: str) -> str:
    """How records name the rebuilt graph of one architecture."""
    return f"nasbench101:{arch_hash}"


def config_id(arch_hash: str) -> str:
    """One configuration per architecture: all its repeats are held out together in CV."""
    return f"ecnas/{arch_hash}/b{BATCH_SIZE}"


def load_cells(root: Path) -> dict[str, CellSpec]:
    """Every cell spec of ``graphs/generated_graphs_*.json`` by hash (specs must agree)."""
    cells: dict[str, CellSpec] = {}
    files = sorted((root / "graphs").glob("generated_graphs_*.json"))
    if not files:
        raise InvalidArgument(f"{root}/graphs holds no generated_graphs_*.json")
    for file in files:
        try:
            table = json.loads(read_bytes(file, MAX_JSON_BYTES, "cell specs").decode())
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"{file}: cannot read the cell specs: {short(exc)}") from None
        if not isinstance(table, dict):
            raise InvalidArgument(f"{file}: expected an object of hash -> [matrix, ops]")
        for arch_hash, entry in table.items():
            try:
                matrix, ops = entry
                spec = CellSpec.from_lists(matrix, ops)
            except (TypeError, ValueError, InvalidArgument) as exc:
                raise InvalidArgument(f"{file.name}: cell {arch_hash}: {exc}") from exc
            if cells.setdefault(arch_hash, spec) != spec:
                raise InvalidArgument(f"{file.name}: cell {arch_hash} differs from another file")
    return cells


def _rebuild(item: tuple[str, CellSpec]) -> tuple[str, bytes, object]:
    """(hash, weightless ONNX, profile) of one architecture (runs in a worker process)."""
    arch_hash, spec = item
    torch.manual_seed(0)
    graph = export_onnx(Network(spec))
    return arch_hash, graph, profile_graph(graph)


def _one_thread() -> None:
    torch.set_num_threads(1)


def rebuild_graphs(
    cells: dict[str, CellSpec], jobs: int = 1, progress: Progress | None = None
) -> GraphCache:
    """A graph cache naming every cell's rebuilt network by :func:`graph_ref`."""
    cache = GraphCache()
    items = sorted(cells.items())
    done = 0

    def take(results: Iterable[tuple[str, bytes, object]]) -> None:
        nonlocal done
        for arch_hash, graph, profile in results:
            cache.add(graph_ref(arch_hash), graph, profile)
            done += 1
            if progress is not None:
                progress(done, len(items))

    if jobs <= 1 or len(items) < 2:
        take(map(_rebuild, items))
        return cache
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_one_thread) as pool:
        take(pool.map(_rebuild, items, chunksize=4))
    return cache


@dataclass
class EcnasRead:
    """Records of one EC-NAS-Bench folder, the graphs they name, and what was left out."""

    records: list[Record] = field(default_factory=list)
    graphs: GraphCache = field(default_factory=GraphCache)
    dropped: list[Problem] = field(default_factory=list)
    runs: int = 0
    architectures: int = 0
    overhead_power_w: float | None = None
    """GPU power of the initial one-step segments pooled over the runs read (W)."""


def _where(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _values(run: Run, arch_hash: str, space: str, repeat: int, hardware: str) -> dict[str, object]:
    d = derive(run)
    return {
        "graph": graph_ref(arch_hash),
        "phase": "train",
        "batch_size": BATCH_SIZE,
        "samples": d.samples_per_epoch,
        "epochs": d.epochs,
        "repeat": repeat,
        "energy_j": d.energy_j,
        "energy_source": SOURCE_CARBONTRACKER_NVML,
        "duration_s": d.train_time_s,
        "hardware": hardware,
        "config_id": config_id(arch_hash),
        "run_id": f"{space}/{arch_hash}/repeat_{repeat + 1}",
        "power_mean_w": d.step_power_w,
        "device": "cuda",
        "device_name": run.gpu_devices[0],
        "meter": "carbontracker",
        "software": "TensorFlow (NAS-Bench-101 training code), carbontracker (EC-NAS-Bench)",
        "data": f"CIFAR-10, {d.samples_per_epoch} training images per epoch",
        "plan": "ecnas-bench",
        "variant": space,
        "notes": d.notes(),
        "started_at": run.started_at,
        "finished_at": run.stopped_at,
    }


def read_ecnas(
    root: str | Path,
    hardware: str = HARDWARE,
    jobs: int = 1,
    progress: Progress | None = None,
) -> EcnasRead:
    """Read an EC-NAS-Bench folder: one record per reliable run, its graph rebuilt.

    A run that cannot be read, names an unknown architecture, or whose rebuilt graph has other
    parameters than it trained becomes a bad record (reported with its path); a run whose
    energy derivation is unreliable is dropped (:func:`collector.ecnas.derive`).
    """
    root = Path(root)
    if not looks_like_ecnas(root):
        raise InvalidArgument(
            f"{root} is not an EC-NAS-Bench folder (graphs/, train_model_results/)"
        )
    cells = load_cells(root)
    files = sorted(root.glob(RESULTS_GLOB))
    if not files:
        raise InvalidArgument(f"{root} holds no {RESULTS_GLOB}")
    out = EcnasRead()
    parsed: list[tuple[Path, str, str, int, Run]] = []
    read_runs: list[Run] = []
    for path in files:
        where = _where(root, path)
        repeat_dir, arch_hash, space = (
            path.parent.name,
            path.parent.parent.name,
            path.parents[4].name,
        )
        match = _REPEAT.match(repeat_dir)
        try:
            if not _HASH.match(arch_hash) or not match:
                raise RunError("path is not .../<hash>/repeat_<k>/results.json")
            if arch_hash not in cells:
                raise RunError(f"architecture {arch_hash} has no cell spec under graphs/")
            run = read_run(path)
            if hardware == HARDWARE and HARDWARE_GPU not in run.gpu_devices[0]:
                raise RunError(
                    f"measured on {run.gpu_devices[0]!r}, not a {HARDWARE_GPU}: choose --hardware"
                )
            derivation = derive(run)
        except RunError as exc:
            out.records.append(Record(where, {"__error__": str(exc)}, root))
            continue
        read_runs.append(run)
        if derivation.unreliable:
            out.dropped.append(Problem(where, derivation.unreliable))
            continue
        parsed.append((path, where, arch_hash, int(match.group(1)) - 1, run))
    out.runs = len(files)
    out.overhead_power_w = overhead_power_w(read_runs)
    needed = {arch_hash: cells[arch_hash] for _, _, arch_hash, _, _ in parsed}
    out.architectures = len(needed)
    out.graphs = rebuild_graphs(needed, jobs=jobs, progress=progress)
    for path, where, arch_hash, repeat, run in parsed:
        _, profile = out.graphs.get(graph_ref(arch_hash), root)
        params = profile.params  # type: ignore[attr-defined]
        if params != run.trainable_params:
            reason = (
                f"rebuilt graph has {params} parameters, the run trained {run.trainable_params}"
            )
            out.records.append(Record(where, {"__error__": reason}, root))
            continue
        space = path.parents[4].name
        out.records.append(Record(where, _values(run, arch_hash, space, repeat, hardware), root))
    return out
