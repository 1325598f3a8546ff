"""CodeCarbon's ``emissions.csv`` read directly as import records (see docs/IMPORT.md).

CodeCarbon knows energy, duration and the machine, not the model. The user says how each row
maps to the import format with templates: ``{name}`` is replaced by the row's column ``name`` or
by a ``key:value`` pair of its ``project_name`` (a common way to label CodeCarbon runs, e.g.
``module:Linear,batch_size:472,forward_passes:303``). A template that yields ``a*b`` (integers)
is multiplied out, so ``samples={forward_passes}*{batch_size}`` works.

Energies are CodeCarbon's totals over the window in kWh, converted to joules (x 3.6e6). The
energy column chosen decides the default source: ``gpu_energy`` is read from NVML by CodeCarbon
(``codecarbon-pynvml``, measured); ``cpu_energy``, ``ram_energy`` and ``energy_consumed``
(which includes CodeCarbon's modelled RAM power) are labelled ``estimate-codecarbon-...``
unless the user names a measured source with ``source``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from collector.import_file import check_header, open_lines, short
from collector.importer import COLUMNS, Record
from collector.meters.codecarbon_meter import KWH_TO_J
from joulecast.errors import InvalidArgument

ENERGY_COLUMNS = {
    "gpu_energy": "codecarbon-pynvml",
    "cpu_energy": "estimate-codecarbon-cpu",
    "ram_energy": "estimate-codecarbon-ram",
    "energy_consumed": "estimate-codecarbon-total",
}
"""Energy column -> default energy source."""
REQUIRED_COLUMNS = ("duration", "energy_consumed")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PRODUCT = re.compile(r"^\s*\d+(\s*\*\s*\d+)+\s*$")


def looks_like_codecarbon(path: str | Path) -> bool:
    """True when the file's header is CodeCarbon's (``energy_consumed`` and ``duration``).

    Reads the first line only, and only once the file is known to be a regular file of a
    readable size (:mod:`collector.import_file` raises on one line otherwise)."""
    with open_lines(Path(path), "import file") as lines:
        try:
            header = next(csv.reader(lines), [])
        except (csv.Error, InvalidArgument):
            return False
    return all(c in header for c in REQUIRED_COLUMNS)


def project_fields(project_name: str) -> dict[str, str]:
    """``key:value`` pairs of a CodeCarbon ``project_name`` (empty when it has none)."""
    pairs: dict[str, str] = {}
    for part in project_name.split(","):
        key, sep, value = part.partition(":")
        if sep and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key.strip()):
            pairs[key.strip()] = value.strip()
    return pairs


def fill(template: str, fields: Mapping[str, str]) -> str:
    """``template`` with ``{name}`` replaced from ``fields``; ``a*b`` integers multiplied."""

    def sub(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in fields:
            raise ValueError(f"template {template!r}: no column or project_name key {name!r}")
        return str(fields[name])

    text = _PLACEHOLDER.sub(sub, template)
    if _PRODUCT.match(text):
        product = 1
        for factor in text.split("*"):
            product *= int(factor)
        return str(product)
    return text


def check_templates(templates: Mapping[str, str]) -> None:
    unknown = sorted(k for k in templates if k not in COLUMNS)
    if unknown:
        raise InvalidArgument(f"--set: unknown field(s) {', '.join(unknown)}; known: {COLUMNS}")
    for name in ("graph", "hardware", "phase", "batch_size", "samples"):
        if name not in templates:
            raise InvalidArgument(
                f"a CodeCarbon file does not say {name}: give it with --set {name}=TEMPLATE"
                + (" (or --graph-column / --graph-template)" if name == "graph" else "")
            )


def read_codecarbon(
    path: str | Path,
    templates: Mapping[str, str],
    *,
    energy: str = "gpu_energy",
    source: str | None = None,
) -> Iterator[Record]:
    """Import records of a CodeCarbon ``emissions.csv``, one per row.

    ``templates`` maps import-format fields (graph, hardware, phase, batch_size, samples, and
    optionally repeat, config_id, ...) to templates. ``energy`` is the CodeCarbon column stored
    as ``energy_j``; ``source`` overrides its default source label.
    """
    if energy not in ENERGY_COLUMNS:
        raise InvalidArgument(f"energy must be one of {sorted(ENERGY_COLUMNS)}, got {energy!r}")
    check_templates(templates)
    path = Path(path)
    label = source or ENERGY_COLUMNS[energy]
    with open_lines(path, "CodeCarbon file") as lines:
        try:
            reader = csv.DictReader(lines)
            header = check_header(reader.fieldnames, path)
            missing = [c for c in (*REQUIRED_COLUMNS, energy) if c not in header]
            if missing:
                raise InvalidArgument(
                    f"{short(path.name)} is not a CodeCarbon emissions.csv: no {missing}"
                )
            start = reader.line_num
            for raw in reader:
                where = f"{path.name}:{start + 1}"
                start = reader.line_num
                try:
                    values = _record(raw, templates, energy, label)
                except ValueError as exc:
                    values = {"__error__": short(exc)}
                yield Record(where, values, path.parent)
        except csv.Error as exc:
            raise InvalidArgument(
                f"{short(path.name)}:{lines.number}: not CSV: {short(exc)}"
            ) from None


def _kwh(raw: Mapping[str, str], column: str) -> float | None:
    text = (raw.get(column) or "").strip()
    if not text:
        return None
    try:
        return float(text) * KWH_TO_J
    except ValueError:
        raise ValueError(f"{column}={text!r} is not a number of kWh") from None


def _record(
    raw: Mapping[str, str], templates: Mapping[str, str], energy: str, label: str
) -> dict[str, object]:
    fields = {
        **project_fields(raw.get("project_name") or ""),
        **{k: v for k, v in raw.items() if k},
    }
    values: dict[str, object] = {name: fill(t, fields) for name, t in templates.items()}
    energy_j = _kwh(raw, energy)
    if energy_j is None:
        raise ValueError(f"{energy} is empty")
    parts = {c: _kwh(raw, c) for c in ENERGY_COLUMNS}
    breakdown = ", ".join(f"{c}={j:.6g} J" for c, j in parts.items() if j is not None)
    powers = ", ".join(
        f"{c}={raw[c]} W" for c in ("cpu_power", "gpu_power", "ram_power") if raw.get(c)
    )
    mode = (raw.get("tracking_mode") or "").strip()
    values.setdefault("energy_j", repr(energy_j))
    values.setdefault("energy_source", label)
    values.setdefault("duration_s", raw.get("duration"))
    values.setdefault("codecarbon_energy_j", parts["energy_consumed"])
    values.setdefault("codecarbon_mode", f"{mode or 'unknown'}/{energy}")
    values.setdefault("meter", "codecarbon")
    values.setdefault("run_id", raw.get("run_id"))
    values.setdefault("finished_at", raw.get("timestamp"))
    values.setdefault("cpu_model", raw.get("cpu_model"))
    if energy == "gpu_energy" and raw.get("gpu_model"):
        values.setdefault("device_name", raw.get("gpu_model"))
        values.setdefault("device", "cuda")
    if raw.get("python_version") or raw.get("os"):
        values.setdefault(
            "software", f"python {raw.get('python_version', '?')}; {raw.get('os', '?')}"
        )
    note = f"codecarbon ({mode or 'unknown'} mode) {breakdown}; {powers}".strip("; ")
    values["notes"] = "; ".join(str(n) for n in (values.get("notes"), note) if n)
    return values
