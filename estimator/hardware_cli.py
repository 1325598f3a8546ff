"""``joulecast hardware``: every catalogued GPU, measured or not, and all measured hardware.

A catalogued GPU is *measured* when a published predictor's hardware id names it: its catalog
id, or any of its names (``nvidia-h200``, the collector's default id for an H200, finds ``h200``).
Measured hardware the catalog lacks (CPUs, GPUs it does not hold) is listed too, its kind read
from the energy source its predictor's manifest states. The catalog's figures are vendor peak
figures at the boost clock, not measurements.

A GPU with a calibration (``<artifacts>/transfer/calibrated/``, from ``joulecast calibrate`` or
a few rows through fit or Retrain) says so, with the hardware id its answers are asked by.

Only the catalog, the artifacts' manifests and the calibrations' JSON are read: no predictor
is loaded, so the listing imports neither numpy nor XGBoost.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from estimator.published import PublishedSummary
    from estimator.transfer.files import CalibratedSummary
    from joulecast.hardware import GpuSpec

logger = logging.getLogger(__name__)

DEFAULT_ARTIFACTS = Path("artifacts")

_GPU_SOURCES = frozenset({"nvml-energy-counter", "nvml-power-integral", "carbontracker-nvml"})
_CPU_SOURCES = frozenset({"rapl", "estimate-cpu-time", "estimate-codecarbon-cpu"})
_CODECARBON_GPU_MODES = ("codecarbon-pynvml", "codecarbon-amdsmi")
_CODECARBON_CPU_MODES = ("codecarbon-intel-rapl", "codecarbon-intel-power-gadget")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "hardware",
        help="list the GPU catalog's published figures and the hardware with measured predictors",
        description="Every GPU of joulecast's hardware catalog (vendor peak figures at the boost "
        "clock: FLOP/s by precision, memory, bandwidth, power limits; not measurements) and "
        "every hardware with a published predictor under ARTIFACTS/predictors, catalogued or not.",
    )
    p.add_argument(
        "--artifacts",
        type=Path,
        default=DEFAULT_ARTIFACTS,
        help="artifacts folder whose predictors/ says what is measured (default: artifacts/)",
    )
    p.add_argument("--json", action="store_true", help="print JSON: one object per hardware")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class HardwareEntry:
    """One listed hardware: a catalogued GPU (``spec``) and/or published predictors."""

    id: str
    kind: str
    """gpu, cpu, or unknown (measured hardware the catalog lacks, of an unrecognised meter)."""
    spec: GpuSpec | None
    predictors: tuple[PublishedSummary, ...]
    calibrations: tuple[CalibratedSummary, ...] = ()
    """Calibrations of this GPU (``joulecast calibrate`` or a few rows through fit/Retrain):
    answered as tier calibrated where no predictor of its own is published."""

    @property
    def measured(self) -> bool:
        """A predictor of its own learned from a meter's readings."""
        return any(not p.energy_is_estimate for p in self.predictors)

    @property
    def estimated(self) -> bool:
        """Predictors of its own, every one learned from estimated energy (no meter)."""
        return bool(self.predictors) and not self.measured

    def to_dict(self) -> dict[str, Any]:
        head = {
            "id": self.id,
            "name": self.spec.name if self.spec else None,
            "nvml_names": list(self.spec.nvml_names) if self.spec else [],
            "kind": self.kind,
            "catalogued": self.spec is not None,
            "measured": self.measured,
            "estimated": self.estimated,
            "predictors": [
                {
                    "hardware": p.hardware,
                    "version": p.version,
                    "energy_source": p.energy_source,
                    "energy_is_estimate": p.energy_is_estimate,
                }
                for p in self.predictors
            ],
            "calibrations": [
                {"hardware": c.hardware, "version": c.version, "rows": c.rows}
                for c in self.calibrations
            ],
        }
        figures = self.spec.to_dict() if self.spec is not None else _uncatalogued_figures()
        return {**head, **{key: v for key, v in figures.items() if key not in head}}


def hardware_entries(artifacts_dir: Path | str) -> list[HardwareEntry]:
    """Catalogued GPUs in catalog order, then measured hardware the catalog lacks, by id."""
    # imported when the command runs: `joulecast --help` stays light
    from estimator.published import list_hardware, read_summary
    from estimator.transfer.files import calibrated_summaries
    from joulecast.hardware import AmbiguousGpuName, find_gpu, load_catalog

    catalog = load_catalog()
    measured: dict[str, list[PublishedSummary]] = {spec.id: [] for spec in catalog}
    others: list[HardwareEntry] = []
    for hardware in list_hardware(artifacts_dir):
        summary = read_summary(artifacts_dir, hardware)
        if summary is None:
            continue
        try:
            spec = find_gpu(hardware)
        except AmbiguousGpuName as exc:
            # a partial name ("a100") must not claim a catalog entry; it is listed on its own
            logger.info("published hardware %s is not a catalogued name: %s", hardware, exc)
            spec = None
        if spec is not None:
            measured[spec.id].append(summary)
        else:
            others.append(HardwareEntry(hardware, kind_of(summary), None, (summary,)))
    calibrated: dict[str, list[CalibratedSummary]] = {spec.id: [] for spec in catalog}
    for summary in calibrated_summaries(artifacts_dir):
        calibrated.setdefault(summary.gpu, []).append(summary)
    listed = [
        HardwareEntry(s.id, "gpu", s, tuple(measured[s.id]), tuple(calibrated[s.id]))
        for s in catalog
    ]
    return listed + sorted(others, key=lambda entry: entry.id)


def kind_of(summary: PublishedSummary) -> str:
    """gpu or cpu by the meter that measured the rows (the manifest names no device)."""
    source = summary.energy_source or ""
    if source in _GPU_SOURCES or source.startswith(_CODECARBON_GPU_MODES):
        return "gpu"
    if source in _CPU_SOURCES or source.startswith(_CODECARBON_CPU_MODES):
        return "cpu"
    return "unknown"


def run(args: argparse.Namespace) -> int:
    entries = hardware_entries(args.artifacts)
    if args.json:
        print(json.dumps([entry.to_dict() for entry in entries], indent=1))
    else:
        print(format_table(entries))
    return 0


_COLUMNS = (
    ("id", "{}"),
    ("kind", "{}"),
    ("rows", "{}"),
    ("arch", "{}"),
    ("FP32 TFLOPS", "{:.1f}"),
    ("tensor FP16 TFLOPS", "{:.1f}"),
    ("memory GiB", "{:g}"),
    ("GB/s", "{:g}"),
    ("limit W", "{:g}"),
    ("idle W", "{:g}"),
    ("name", "{}"),
)


def format_table(entries: list[HardwareEntry]) -> str:
    rows = [[name for name, _ in _COLUMNS]]
    for entry in entries:
        spec = entry.spec
        # whose rows its own predictor learned from: a meter's readings, or estimates
        measured = "measured" if entry.measured else "estimated" if entry.estimated else "no"
        aliases = [p.hardware for p in entry.predictors if p.hardware != entry.id]
        if aliases:
            measured += f" ({', '.join(aliases)})"
        if entry.calibrations:
            measured += f", calibrated ({', '.join(c.hardware for c in entry.calibrations)})"
        values: list[object] = [entry.id, entry.kind, measured]
        if spec is None:
            values += [None] * 7 + ["(not in the catalog)"]
        else:
            values += [
                spec.architecture,
                spec.fp32_tflops,
                spec.tensor_fp16_tflops,
                spec.memory_gib,
                spec.memory_bandwidth_gbs,
                spec.power_limit_w,
                spec.idle_power_w,
                spec.name,
            ]
        rows.append(
            [
                "-" if v is None else fmt.format(v)
                for v, (_, fmt) in zip(values, _COLUMNS, strict=True)
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    ]
    catalogued = sum(entry.spec is not None for entry in entries)
    measured_count = sum(entry.measured for entry in entries)
    estimated_count = sum(entry.estimated for entry in entries)
    calibrated_count = sum(bool(entry.calibrations) for entry in entries)
    lines.append(
        f"({catalogued} catalogued GPUs, {measured_count} measured hardware, {estimated_count} "
        f"with estimated rows only (no meter), {calibrated_count} calibrated GPUs; rows: what "
        "the hardware's own predictor learned from; catalog figures are "
        "vendor peaks at the boost clock, not measurements; --json gives every figure and its source)"
    )
    return "\n".join(lines)


def _uncatalogued_figures() -> dict[str, Any]:
    # imported when the command runs: `joulecast --help` stays light
    from joulecast.hardware.spec import FIGURES

    return {
        "architecture": None,
        "compute_capability": None,
        "form_factor": None,
        **dict.fromkeys(FIGURES),
        "sources": {},
        "notes": [],
    }
