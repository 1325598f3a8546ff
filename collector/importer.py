"""Import measurements made elsewhere into the measurement store (format: docs/IMPORT.md).

A record is one run: its graph (an ONNX path relative to the import file, or a descriptor from
:mod:`collector.import_layers`), phase, batch size, sample count, energy in joules with its
source, duration and hardware. Every record is validated first; each problem names its line and
what is wrong. Nothing is written when any record is bad, unless ``skip_bad`` is set. Graphs are
stored weightless, like the collector stores them, and FLOPs and parameters come from the same
profiler the estimator and the server use. The run key is a hash of the record's content, so
importing a file twice adds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from collector.import_file import (
    MAX_IMPORT_BYTES,
    Lines,
    check_header,
    check_regular,
    listed,
    open_lines,
    short,
)
from collector.import_layers import build_descriptor, is_descriptor
from joulecast import idle_meter
from joulecast.errors import InvalidArgument, JoulecastError
from joulecast.graph import profile_graph
from joulecast.hardware_name import hardware_name_problem
from joulecast.measurement import (
    PHASES,
    Row,
    check_row,
    graph_sha256,
    is_estimate,
    source_problem,
)
from joulecast.store import MeasurementStore
from joulecast.weightless import strip_weights_file

logger = logging.getLogger(__name__)

REQUIRED = (
    "graph",
    "phase",
    "batch_size",
    "samples",
    "energy_j",
    "energy_source",
    "duration_s",
    "hardware",
)
_INT_OPTIONAL = ("epochs", "repeat")
_FLOAT_OPTIONAL = (
    "gpu_util_mean",
    "mem_util_mean",
    "mem_used_mean_mib",
    "power_mean_w",
    "idle_power_w",
    "energy_dynamic_j",
    "codecarbon_energy_j",
    "cpu_s",
    "others_busy_cores",
)
_POSITIVE_OPTIONAL = ("power_limit_w",)
_TEXT_OPTIONAL = (
    "run_id",
    "config_id",
    "plan",
    "device",
    "variant",
    "num_layers",
    "hidden_size",
    "codecarbon_mode",
    "meter",
    "notes",
    "device_name",
    "driver",
    "cpu_model",
    "software",
    "data",
    "precision",
    "started_at",
    "finished_at",
)
COLUMNS = (*REQUIRED, *_INT_OPTIONAL, *_FLOAT_OPTIONAL, *_POSITIVE_OPTIONAL, *_TEXT_OPTIONAL)
"""Every column the import format knows; any other column is refused (a typo loses data)."""

MAX_GRAPH_BYTES = 64 << 20


@dataclass(frozen=True)
class Problem:
    """One bad record: where it is and what is wrong."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportResult:
    """What an import did (or, with ``dry_run``, would do)."""

    read: int = 0
    imported: int = 0
    already_present: int = 0
    duplicates: int = 0
    graphs: int = 0
    problems: list[Problem] = field(default_factory=list)
    dropped: list[Problem] = field(default_factory=list)
    """Records a format's reliability rule left out (e.g. EC-NAS-Bench runs whose energy
    derivation contradicts physics): counted and listed, never imported."""
    written: bool = False
    warnings: list[str] = field(default_factory=list)
    """What the imported rows say of their own meter (:mod:`joulecast.idle_meter`): stored,
    but a fit refuses them."""

    def to_json(self) -> dict[str, object]:
        return {
            "read": self.read,
            "imported": self.imported,
            "already_present": self.already_present,
            "duplicates_in_input": self.duplicates,
            "distinct_graphs": self.graphs,
            "bad": len(self.problems),
            "problems": [str(p) for p in self.problems],
            "dropped": len(self.dropped),
            "dropped_runs": [str(p) for p in self.dropped],
            "written": self.written,
            "warnings": list(self.warnings),
        }


class BadImport(InvalidArgument):
    """Some records are bad and nothing was written; ``problems`` lists each one."""

    def __init__(self, problems: list[Problem], limit: int = 30) -> None:
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:limit])
        more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
        super().__init__(
            f"{len(problems)} bad record(s), nothing imported (use --skip-bad to import the "
            f"rest):\n  {shown}{more}"
        )


@dataclass(frozen=True)
class Record:
    """One raw input record (strings or JSON values) and where it came from."""

    where: str
    values: Mapping[str, object]
    base_dir: Path


def read_records(path: str | Path) -> Iterator[Record]:
    """Records of a joulecast import file: CSV with a header line, or JSONL (``.jsonl``), in
    UTF-8 with or without a byte-order mark. The file is looked at before it is read (a regular
    file of at most :data:`~collector.import_file.MAX_IMPORT_BYTES`) and read line by line,
    bounded (:mod:`collector.import_file`); whatever is wrong with it is said on one line."""
    path = Path(path)
    check_regular(path, MAX_IMPORT_BYTES, "import file")
    with open_lines(path, "import file") as lines:
        try:
            yield from _read_records(path, lines)
        except csv.Error as exc:
            raise InvalidArgument(
                f"{short(path.name)}:{lines.number}: not CSV: {short(exc)}"
            ) from None


def _read_records(path: Path, lines: Lines) -> Iterator[Record]:
    base = path.parent
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for line in lines:
            if not line.strip():
                continue
            where = f"{path.name}:{lines.number}"
            try:
                values = json.loads(line)
            except json.JSONDecodeError as exc:
                yield Record(where, {"__error__": f"not JSON: {exc.msg}"}, base)
                continue
            except RecursionError:
                yield Record(where, {"__error__": "not JSON: nested too deeply"}, base)
                continue
            if not isinstance(values, dict):
                values = {"__error__": "a line must hold one JSON object"}
            yield Record(where, values, base)
        return
    reader = csv.DictReader(lines)
    header = check_header(reader.fieldnames, path)
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise InvalidArgument(
            f"{short(path.name)}: {len(unknown)} unknown column(s) {listed(unknown)}; known: "
            f"{', '.join(COLUMNS)}"
        )
    start = reader.line_num
    for values in reader:
        yield Record(f"{path.name}:{start + 1}", values, base)
        start = reader.line_num


class GraphCache:
    """Weightless graph bytes and profile per graph reference (path, descriptor, or a name
    given to a graph built in memory with :meth:`add`), built once."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[str, str], tuple[bytes, object] | str] = {}
        self._built: dict[str, tuple[bytes, object]] = {}

    def add(self, ref: str, onnx_bytes: bytes, profile: object | None = None) -> None:
        """Let ``ref`` name ``onnx_bytes`` (a weightless graph built in memory, e.g. a rebuilt
        NAS-Bench-101 network); profiled here unless its ``profile`` is given."""
        self._built[ref] = (
            onnx_bytes,
            profile if profile is not None else profile_graph(onnx_bytes),
        )

    def get(self, ref: str, base_dir: Path) -> tuple[bytes, object]:
        if ref in self._built:
            return self._built[ref]
        key = (ref, str(base_dir))
        if key not in self._graphs:
            try:
                if is_descriptor(ref):
                    onnx_bytes = build_descriptor(ref)
                else:
                    file = Path(ref) if Path(ref).is_absolute() else base_dir / ref
                    check_regular(file, MAX_GRAPH_BYTES, "graph")  # a FIFO would block the read
                    onnx_bytes = strip_weights_file(file)
                self._graphs[key] = (onnx_bytes, profile_graph(onnx_bytes))
            except JoulecastError as exc:
                self._graphs[key] = f"graph {short(ref, 80)!r}: {short(exc)}"
        found = self._graphs[key]
        if isinstance(found, str):
            raise InvalidArgument(found)
        return found

    def __len__(self) -> int:
        return len(self._built) + sum(1 for v in self._graphs.values() if not isinstance(v, str))


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _parsed(
    values: Mapping[str, object], name: str, what: str, *, required: bool
) -> tuple[object, float] | None:
    """``name``'s raw value and that value as a float; None when it is blank and optional.
    ValueError "is missing" or "is not ``what``"."""
    raw = values.get(name)
    if _blank(raw):
        if required:
            raise ValueError(f"{name} is missing")
        return None
    try:
        return raw, float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name}={raw!r} is not {what}") from None


def _int(values: Mapping[str, object], name: str, low: int, default: int | None = None) -> int:
    parsed = _parsed(values, name, "an integer", required=default is None)
    if parsed is None:
        assert default is not None  # a blank value without a default raised above
        return default
    raw, number = parsed
    if isinstance(raw, bool) or not math.isfinite(number) or number != int(number):
        raise ValueError(f"{name}={raw!r} is not an integer")
    if number < low:
        raise ValueError(f"{name}={raw!r} must be at least {low}")
    return int(number)


def _float(
    values: Mapping[str, object],
    name: str,
    *,
    positive: bool,
    required: bool,
    high: float = math.inf,
) -> float | None:
    parsed = _parsed(values, name, "a number", required=required)
    if parsed is None:
        return None
    raw, number = parsed
    if isinstance(raw, bool) or not math.isfinite(number):
        raise ValueError(f"{name}={raw!r} is not a finite number")
    if (positive and number <= 0) or number < 0 or number > high:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{name}={raw!r} must be {bound}" + ("" if high == math.inf else f" and <= {high:g}")
        )
    return number


def _text(values: Mapping[str, object], name: str) -> str | None:
    raw = values.get(name)
    return None if _blank(raw) else str(raw).strip()


def to_row(record: Record, graphs: GraphCache, store_graph: dict[str, bytes]) -> Row:
    """Validate one record and build its store row; ValueError/InvalidArgument say why not."""
    v = record.values
    _check_fields(v)
    phase, hardware, source = _checked_names(v)
    batch_size = _int(v, "batch_size", 1)
    samples = _int(v, "samples", 1)
    epochs = _int(v, "epochs", 1, default=1)
    repeat = _int(v, "repeat", 0, default=0)
    energy_j = _float(v, "energy_j", positive=True, required=True)
    duration_s = _float(v, "duration_s", positive=True, required=True)
    floats = {
        n: _float(v, n, positive=False, required=False, high=100.0 if "util" in n else math.inf)
        for n in _FLOAT_OPTIONAL
    }
    power_limit_w = _float(v, "power_limit_w", positive=True, required=False)
    texts = {n: _text(v, n) for n in _TEXT_OPTIONAL}
    onnx_bytes, profile = graphs.get(str(v["graph"]).strip(), record.base_dir)
    sha = graph_sha256(onnx_bytes)
    store_graph[sha] = onnx_bytes
    config_id = texts["config_id"] or f"{hardware}/{sha[:16]}/b{batch_size}"
    content = {
        "graph_sha256": sha,
        "hardware": hardware,
        "phase": phase,
        "batch_size": batch_size,
        "samples": samples,
        "epochs": epochs,
        "repeat": repeat,
        "energy_j": repr(energy_j),
        "energy_source": source,
        "duration_s": repr(duration_s),
        "config_id": config_id,
        "run_id": texts["run_id"],
    }
    if power_limit_w is not None:  # only when set: keys of rows imported without it stay put
        content["power_limit_w"] = repr(power_limit_w)
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    if floats["power_mean_w"] is None:
        floats["power_mean_w"] = energy_j / duration_s
    row = Row(
        run_key=f"import/{hardware}/{digest}",
        plan=texts["plan"] or "import",
        config_id=config_id,
        family=profile.family,  # type: ignore[attr-defined]
        variant=texts["variant"] or "paper",
        num_layers=texts["num_layers"] or "-",
        hidden_size=texts["hidden_size"] or "-",
        phase=phase,
        repeat=repeat,
        samples=samples,
        batch_size=batch_size,
        epochs=epochs,
        status="ok",
        hardware=hardware,
        device=texts["device"] or "unknown",
        flops_forward=profile.flops_forward,  # type: ignore[attr-defined]
        flops_train=profile.flops_train,  # type: ignore[attr-defined]
        params=profile.params,  # type: ignore[attr-defined]
        duration_s=duration_s,
        energy_j=energy_j,
        energy_source=source,
        energy_is_estimate=is_estimate(source),
        power_limit_w=power_limit_w,
        meter=texts["meter"] or "import",
        notes=_notes(texts),
        graph_sha256=sha,
        **floats,
        **{n: texts[n] for n in _TEXT_KEPT},
    )
    return check_row(row)


_TEXT_SHAPED = ("run_id", "config_id", "plan", "device", "variant", "num_layers", "hidden_size")
_TEXT_KEPT = tuple(n for n in _TEXT_OPTIONAL if n not in (*_TEXT_SHAPED, "meter", "notes"))
"""Text fields stored as they were given (the others get defaults, go into the run key or,
for the run id, into the notes)."""


def _check_fields(v: Mapping[object, object]) -> None:
    """Refuse a record whose fields cannot be read: a parse error, more values than the header
    has columns, a column the format does not know, a required one left blank."""
    if "__error__" in v:
        raise ValueError(str(v["__error__"]))
    if None in v:
        raise ValueError("more fields than the header has columns (an unquoted comma?)")
    unknown = sorted(str(k) for k in v if k not in COLUMNS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [c for c in REQUIRED if _blank(v.get(c))]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")


def _checked_names(v: Mapping[object, object]) -> tuple[str, str, str]:
    """The record's phase, hardware and energy source, each checked by the ground's rule."""
    phase = str(v["phase"]).strip()
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r} must be 'train' or 'test'")
    hardware = str(v["hardware"]).strip()
    problem = hardware_name_problem(hardware)
    if problem is not None:
        raise ValueError(problem)
    source = str(v["energy_source"]).strip()
    why = source_problem(source)
    if why:
        raise ValueError(why)
    return phase, hardware, source


def _notes(texts: Mapping[str, str | None]) -> str | None:
    """The record's notes, and the run id it was given (which is not a column)."""
    run_id = f"run_id={texts['run_id']}" if texts["run_id"] else None
    return "; ".join(n for n in (texts["notes"], run_id) if n) or None


def import_records(
    records: Iterable[Record],
    db: str | Path,
    *,
    skip_bad: bool = False,
    dry_run: bool = False,
    graphs: GraphCache | None = None,
    dropped: Iterable[Problem] = (),
) -> ImportResult:
    """Validate every record, then write the good ones in one transaction.

    Raises :class:`BadImport` (nothing written) when a record is bad and ``skip_bad`` is off.
    Records already in the store (same content, hence same run key) are counted, not rewritten.
    ``graphs`` holds graphs built in memory that records name; ``dropped`` lists what the
    reader left out by rule (reported in the result).
    """
    result = ImportResult(dropped=list(dropped))
    graphs = graphs if graphs is not None else GraphCache()
    graph_bytes: dict[str, bytes] = {}
    rows: dict[str, Row] = {}
    for record in records:
        result.read += 1
        try:
            row = to_row(record, graphs, graph_bytes)
        except (ValueError, InvalidArgument) as exc:
            result.problems.append(Problem(short(record.where, 120), short(exc)))
            continue
        if row.run_key in rows:
            result.duplicates += 1
            continue
        rows[row.run_key] = row
    result.graphs = len(graph_bytes)
    if result.problems and not skip_bad:
        raise BadImport(result.problems)
    result.warnings = [f.message() for f in idle_meter.findings(rows.values())]
    if dry_run:  # reads only: the store is neither created nor touched
        stored: set[str] = set()
        if Path(db).exists():
            with MeasurementStore(db, read_only=True) as store:
                stored = store.all_keys()
        present = stored & set(rows)
        result.already_present = len(present)
        result.imported = len(rows) - len(present)
        return result
    with MeasurementStore(db) as store:
        present = store.all_keys() & set(rows)
        new = [r for key, r in rows.items() if key not in present]
        result.already_present = len(present)
        result.imported = len(new)
        if not new:
            return result
        store.put_graphs([graph_bytes[sha] for sha in {r.graph_sha256 for r in new} if sha])
        store.put_rows([(r, ()) for r in new], replace_failed=False)
        result.written = True
    logger.info("imported %d row(s) into %s", result.imported, db)
    return result
