"""The GPU catalog: published figures of the GPUs joulecast may be asked about (``gpus.json``).

The figures are vendor peak figures at the boost clock, taken from datasheets, architecture
whitepapers and the TechPowerUp GPU database, not measurements: a training step reaches a
fraction of them. A figure derived from published unit counts and clocks says so in the entry's
``notes``. ``idle_power_w`` is the one measured figure, filled only where a cited source
measured or published it, like ``power_limit_min_w``/``power_limit_max_w`` (the range NVML
lets one set); otherwise they are null. Every entry cites a source per figure group, and a
figure that the GPU has but no source gave is null with a note naming the field: nothing is
guessed silently.

The file is validated when it is read: a malformed entry is refused with one line that names
the entry and the field.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from joulecast.errors import FailedPrecondition
from joulecast.hardware.names import name_keys
from joulecast.hardware.spec import FIGURES, GpuSpec

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CATALOG_FILE = "gpus.json"

ARCHITECTURES: dict[str, frozenset[tuple[int, int]]] = {
    "Maxwell": frozenset({(5, 0), (5, 2)}),
    "Pascal": frozenset({(6, 0), (6, 1)}),
    "Volta": frozenset({(7, 0)}),
    "Turing": frozenset({(7, 5)}),
    "Ampere": frozenset({(8, 0), (8, 6)}),
    "Ada": frozenset({(8, 9)}),
    "Hopper": frozenset({(9, 0)}),
}
"""Architecture names and the compute capabilities their GPUs report."""
FORM_FACTORS = frozenset({"pcie", "sxm"})

SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "compute": (
        "fp32_tflops",
        "fp16_tflops",
        "tensor_fp16_tflops",
        "tensor_bf16_tflops",
        "tensor_tf32_tflops",
        "sm_count",
        "boost_clock_mhz",
    ),
    "memory": ("memory_gib", "memory_bandwidth_gbs"),
    "power": ("power_limit_w",),
    "power_range": ("power_limit_min_w", "power_limit_max_w"),
    "idle_power": ("idle_power_w",),
}
"""Figure groups that each cite one source (document, URL)."""

_REQUIRED = frozenset(
    {"fp32_tflops", "memory_gib", "memory_bandwidth_gbs", "sm_count", "boost_clock_mhz"}
    | {"power_limit_w"}
)
_INTEGERS = frozenset({"sm_count", "boost_clock_mhz"})
_OPTIONAL = frozenset({"power_limit_min_w", "power_limit_max_w", "idle_power_w"})
"""Null unless a source published them; no note needed."""
_FIRST_CAPABILITY = {
    "fp16_tflops": (6, 0),
    "tensor_fp16_tflops": (7, 0),
    "tensor_bf16_tflops": (8, 0),
    "tensor_tf32_tflops": (8, 0),
}
"""The first compute capability with the unit a figure measures: FP16 arithmetic from Pascal,
tensor cores from Volta, BF16 and TF32 tensor cores from Ampere."""
_KEYS = frozenset(
    {"id", "name", "nvml_names", "architecture", "compute_capability", "form_factor"}
    | set(FIGURES)
    | {"sources", "notes"}
)
_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_CAPABILITY = re.compile(r"^([0-9])\.([0-9])$")


class CatalogError(FailedPrecondition):
    """The GPU catalog file is malformed; the message names the entry and the field."""


@functools.cache
def load_catalog() -> tuple[GpuSpec, ...]:
    """The shipped catalog, read and validated once per process."""
    text = resources.files(__package__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    specs = parse_catalog_text(text, origin=CATALOG_FILE)
    logger.debug("GPU catalog: %d entries", len(specs))
    return specs


def read_catalog(path: Path | str) -> tuple[GpuSpec, ...]:
    """A catalog file elsewhere (not cached): the same format and checks as the shipped one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the GPU catalog: {exc.strerror}") from exc
    return parse_catalog_text(text, origin=str(path))


def parse_catalog_text(text: str, origin: str) -> tuple[GpuSpec, ...]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CatalogError(f"{origin}: not JSON: {exc}") from exc
    return parse_catalog(data, origin)


def parse_catalog(data: object, origin: str = "catalog") -> tuple[GpuSpec, ...]:
    """Validate a decoded catalog (``{"schema_version": 1, "gpus": [...]}``) into specs."""
    if not isinstance(data, dict) or not isinstance(data.get("gpus"), list):
        raise CatalogError(f"{origin}: expected an object with a list 'gpus'")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise CatalogError(
            f"{origin}: schema_version {data.get('schema_version')!r}; "
            f"this joulecast reads {SCHEMA_VERSION}"
        )
    specs = tuple(_Entry(raw, f"{origin}: entry {i}").spec() for i, raw in enumerate(data["gpus"]))
    _check_unique(specs, origin)
    return specs


def _check_unique(specs: tuple[GpuSpec, ...], origin: str) -> None:
    """Every id and name key belongs to one entry, so a name finds one GPU or none."""
    owner: dict[str, str] = {}
    for spec in specs:
        for name in (spec.id, spec.name, *spec.nvml_names):
            for key in name_keys(name):
                if owner.setdefault(key, spec.id) != spec.id:
                    raise CatalogError(
                        f"{origin}: entry {spec.id!r}: name {name!r} is also a name of "
                        f"entry {owner[key]!r}"
                    )


class _Entry:
    """Reads one raw entry, naming the entry and the field in every refusal."""

    def __init__(self, raw: object, where: str) -> None:
        self.where = where
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: expected an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        if isinstance(raw.get("id"), str):
            self.where = f"{where} ({raw['id']!r})"

    def fail(self, field: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.where}: field {field!r}: {problem}")

    def spec(self) -> GpuSpec:
        missing = sorted(_KEYS - self.raw.keys())
        if missing:
            raise self.fail(missing[0], "missing")
        unknown = sorted(self.raw.keys() - _KEYS)
        if unknown:
            raise self.fail(unknown[0], "unknown field")
        spec_id = self.text("id")
        if not _ID.match(spec_id):
            raise self.fail("id", f"{spec_id!r} is not a slug of a-z, 0-9 and single '-'")
        architecture = self.text("architecture")
        if architecture not in ARCHITECTURES:
            raise self.fail("architecture", f"{architecture!r}; one of {sorted(ARCHITECTURES)}")
        capability = self.capability()
        if capability not in ARCHITECTURES[architecture]:
            raise self.fail("compute_capability", f"{capability} is not one of {architecture}'s")
        form_factor = self.text("form_factor")
        if form_factor not in FORM_FACTORS:
            raise self.fail("form_factor", f"{form_factor!r}; one of {sorted(FORM_FACTORS)}")
        figures = {name: self.figure(name) for name in FIGURES}
        notes = self.notes()
        self.check_support(figures, capability, architecture, notes)
        self.check_power(figures)
        return GpuSpec(
            id=spec_id,
            name=self.text("name"),
            nvml_names=self.nvml_names(),
            architecture=architecture,
            compute_capability=capability,
            form_factor=form_factor,
            **figures,
            sources=self.sources(figures),
            notes=notes,
        )

    def text(self, field: str) -> str:
        value = self.raw[field]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, "must be a non-empty string")
        return value

    def capability(self) -> tuple[int, int]:
        value = self.raw["compute_capability"]
        match = _CAPABILITY.match(value) if isinstance(value, str) else None
        if match is None:
            raise self.fail("compute_capability", f"must be a string like '8.6', got {value!r}")
        return int(match[1]), int(match[2])

    def figure(self, field: str) -> Any:
        value = self.raw[field]
        if value is None:
            if field in _REQUIRED:
                raise self.fail(field, "is required")
            return None
        if field in _INTEGERS:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise self.fail(field, f"must be a positive integer, got {value!r}")
            return value
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(field, f"must be a positive number or null, got {value!r}")
        return float(value)

    def nvml_names(self) -> tuple[str, ...]:
        value = self.raw["nvml_names"]
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(n, str) and n.strip() for n in value)
        ):
            raise self.fail("nvml_names", "must be a non-empty list of non-empty strings")
        if len(set(value)) != len(value):
            raise self.fail("nvml_names", "lists a name twice")
        return tuple(value)

    def notes(self) -> tuple[str, ...]:
        value = self.raw["notes"]
        if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
            raise self.fail("notes", "must be a list of non-empty strings")
        return tuple(value)

    def sources(self, figures: dict[str, Any]) -> MappingProxyType[str, str]:
        value = self.raw["sources"]
        if not isinstance(value, dict):
            raise self.fail("sources", "must be an object of figure group -> citation")
        for group, fields in SOURCE_GROUPS.items():
            has_figures = any(figures[f] is not None for f in fields)
            cited = value.get(group)
            if has_figures and not (isinstance(cited, str) and cited.strip()):
                raise self.fail("sources", f"{group!r} ({', '.join(fields)}) cites no source")
            if not has_figures and group in value:
                raise self.fail("sources", f"{group!r} cites a source for figures that are null")
        unknown = sorted(value.keys() - SOURCE_GROUPS.keys())
        if unknown:
            raise self.fail(
                "sources", f"unknown group {unknown[0]!r}; groups: {list(SOURCE_GROUPS)}"
            )
        return MappingProxyType(dict(value))

    def check_support(
        self,
        figures: dict[str, Any],
        capability: tuple[int, int],
        architecture: str,
        notes: tuple[str, ...],
    ) -> None:
        """A figure for a unit the GPU lacks is a mistake; a missing one must say why."""
        for field, first in _FIRST_CAPABILITY.items():
            if capability < first and figures[field] is not None:
                raise self.fail(
                    field,
                    f"{architecture} (compute capability {capability[0]}.{capability[1]}) has "
                    f"no such unit; must be null",
                )
        for field in FIGURES:
            if figures[field] is not None or field in _OPTIONAL:
                continue
            supported = capability >= _FIRST_CAPABILITY.get(field, (0, 0))
            if supported and not any(re.search(rf"\b{field}\b", note) for note in notes):
                raise self.fail(field, "is null but no note names it and says why")

    def check_power(self, figures: dict[str, Any]) -> None:
        limit = figures["power_limit_w"]
        low, high, idle = (
            figures["power_limit_min_w"],
            figures["power_limit_max_w"],
            figures["idle_power_w"],
        )
        if low is not None and low > limit:
            raise self.fail("power_limit_min_w", f"{low} W is above power_limit_w {limit} W")
        if high is not None and high < limit:
            raise self.fail("power_limit_max_w", f"{high} W is below power_limit_w {limit} W")
        if idle is not None and idle >= limit:
            raise self.fail("idle_power_w", f"{idle} W is not below power_limit_w {limit} W")
