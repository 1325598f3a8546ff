"""``joulecast import``: measurements made elsewhere into a measurement store (docs/IMPORT.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from joulecast.errors import InvalidArgument
from joulecast.hardware_name import check_hardware_name
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    from collections.abc import Iterable

    from collector.importer import GraphCache, ImportResult, Record

FORMATS = ("auto", "joulecast", "codecarbon", "ecnas", "zeus")
ENERGY_CHOICES = ("cpu_energy", "energy_consumed", "gpu_energy", "ram_energy")
"""``sorted(collector.import_codecarbon.ENERGY_COLUMNS)``, spelled out so that ``register``
imports nothing heavy (the importer pulls in onnx); a test keeps the two equal."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import measurements made elsewhere (joulecast CSV/JSONL, CodeCarbon emissions.csv, "
        "an EC-NAS-Bench folder, the Zeus NSDI '23 traces folder)",
        description="Validate every row, then import them all in one transaction. Importing the "
        "same rows twice adds nothing. Format: docs/IMPORT.md.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="import file(s) or folder")
    p.add_argument("--db", required=True, type=Path, help="measurement store (SQLite)")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--skip-bad", action="store_true", help="import the good rows when some are bad")
    p.add_argument("--dry-run", action="store_true", help="validate and count; write nothing")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    cc = p.add_argument_group("CodeCarbon emissions.csv")
    graph = cc.add_mutually_exclusive_group()
    graph.add_argument("--graph-column", metavar="COL", help="column holding each row's graph")
    graph.add_argument(
        "--graph-template",
        metavar="T",
        help="graph path or descriptor template, e.g. 'graphs/{project_name}.onnx'",
    )
    cc.add_argument(
        "--hardware", help="hardware name of every row (EC-NAS-Bench: default quadro-rtx6000)"
    )
    cc.add_argument("--phase", choices=PHASES, help="phase of every row")
    cc.add_argument(
        "--energy",
        choices=ENERGY_CHOICES,
        default="gpu_energy",
        help="CodeCarbon column stored as energy_j (kWh -> J)",
    )
    cc.add_argument("--source", help="energy source label overriding the --energy default")
    cc.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=TEMPLATE",
        help="import field from a template over the row's columns and project_name key:value "
        "pairs, e.g. samples={forward_passes}*{batch_size} (repeatable)",
    )
    zeus = p.add_argument_group("Zeus NSDI '23 folder (summary_power_<gpu>.csv)")
    zeus.add_argument(
        "--zeus-gpu",
        action="append",
        default=[],
        metavar="TAG=ID",
        help="the catalogued GPU a file's tag ran on, where the tag names none or several "
        "(e.g. a100=a100-sxm4-40gb; repeatable)",
    )
    ecnas = p.add_argument_group("EC-NAS-Bench folder (graphs/, train_model_results/)")
    ecnas.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="processes rebuilding the NAS-Bench-101 graphs (default 1; ~1 s a graph each)",
    )
    p.set_defaults(func=import_command)


def _pairs(items: list[str], option: str, form: str, *, value_required: bool) -> dict[str, str]:
    """``KEY=VALUE`` items of a repeatable option; InvalidArgument naming the bad one."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or (value_required and not value.strip()):
            raise InvalidArgument(f"{option} {item!r} is not {form}")
        pairs[key.strip()] = value.strip() if value_required else value
    return pairs


def templates_from(args: argparse.Namespace) -> dict[str, str]:
    templates = _pairs(args.set, "--set", "FIELD=TEMPLATE", value_required=False)
    if args.graph_column:
        templates["graph"] = "{" + args.graph_column + "}"
    if args.graph_template:
        templates["graph"] = args.graph_template
    if args.hardware:
        templates["hardware"] = args.hardware
    if args.phase:
        templates["phase"] = args.phase
    return templates


def _kind(args: argparse.Namespace, file: Path) -> str:
    """The file's format. What the path is (a regular file of a readable size, or a folder of
    a known format) is checked before any byte is read, sniffing included."""
    # imported when the command runs: `joulecast --help` stays light
    from collector.import_ecnas import looks_like_ecnas
    from collector.import_file import MAX_IMPORT_BYTES, check_regular
    from collector.import_zeus import looks_like_zeus

    if file.is_dir():
        if args.format in ("auto", "ecnas") and looks_like_ecnas(file):
            return "ecnas"
        if args.format in ("auto", "zeus") and looks_like_zeus(file):
            return "zeus"
        raise InvalidArgument(
            f"{file} is a folder but neither an EC-NAS-Bench folder (graphs/, "
            "train_model_results/) nor a Zeus trace folder (summary_power_*.csv)"
        )
    check_regular(file, MAX_IMPORT_BYTES, "import file")
    if args.format != "auto":
        return args.format
    # imported when the command runs: `joulecast --help` stays light
    from collector.import_codecarbon import looks_like_codecarbon

    return "codecarbon" if looks_like_codecarbon(file) else "joulecast"


def _records(args: argparse.Namespace) -> list[Record]:
    # imported when the command runs: `joulecast --help` stays light
    from collector.import_codecarbon import read_codecarbon
    from collector.importer import read_records

    records: list[Record] = []
    for file in args.files:
        kind = _kind(args, file)
        if kind in ("ecnas", "zeus"):
            raise InvalidArgument(f"{file}: a {kind} folder is imported on its own")
        if kind == "codecarbon":
            records.extend(
                read_codecarbon(file, templates_from(args), energy=args.energy, source=args.source)
            )
        else:
            records.extend(read_records(file))
    return records


def _import_ecnas(args: argparse.Namespace) -> tuple[ImportResult, dict[str, object]]:
    # imported when the command runs: `joulecast --help` stays light
    from collector.import_ecnas import HARDWARE, read_ecnas

    if len(args.files) != 1:
        raise InvalidArgument("import one EC-NAS-Bench folder at a time")
    if args.jobs < 1:
        raise InvalidArgument(f"--jobs must be at least 1, got {args.jobs}")
    with _bar("rebuilding NAS-Bench-101 graphs", quiet=args.json) as progress:
        read = read_ecnas(
            args.files[0], hardware=args.hardware or HARDWARE, jobs=args.jobs, progress=progress
        )
    result = _import(args, read.records, read.graphs, dropped=read.dropped)
    facts = {
        "runs": read.runs,
        "architectures": read.architectures,
        "overhead_gpu_power_w_pooled": read.overhead_power_w,
    }
    return result, facts


def _import_zeus(args: argparse.Namespace) -> tuple[ImportResult, dict[str, object]]:
    # imported when the command runs: `joulecast --help` stays light
    from collector.import_zeus import read_zeus

    if len(args.files) != 1:
        raise InvalidArgument("import one Zeus trace folder at a time")
    if args.hardware:
        raise InvalidArgument(
            "--hardware does not apply to the Zeus traces: each file names its GPU (docs/IMPORT.md)"
        )
    gpus = _pairs(args.zeus_gpu, "--zeus-gpu", "TAG=ID", value_required=True)
    with _bar("building the Zeus workloads' graphs", quiet=args.json) as progress:
        read = read_zeus(args.files[0], progress=progress, gpus=gpus)
    result = _import(args, read.records, read.graphs)
    facts = {
        "zeus_files": read.files,
        "zeus_workloads": read.workloads,
        "zeus_power_above_limit": read.above_limit,
    }
    return result, facts


def _import(
    args: argparse.Namespace,
    records: Iterable[Record],
    graphs: GraphCache | None = None,
    **extra: Any,
) -> ImportResult:
    """Store what a reader built, with the command's ``--db``, ``--skip-bad`` and
    ``--dry-run``."""
    # imported when the command runs: `joulecast --help` stays light
    from collector.importer import import_records

    return import_records(
        records, args.db, skip_bad=args.skip_bad, dry_run=args.dry_run, graphs=graphs, **extra
    )


LINE_EVERY_S = 10.0
"""Off a terminal (a log file, CI), a line of progress this often, and one at the end."""


class _bar:
    """Progress on stderr for long rebuilds: a bar on a terminal, else a line every
    :data:`LINE_EVERY_S` and one when done (a log shows the work moving); nothing with
    ``quiet``."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet = label, quiet
        self._bars = None

    def __enter__(self):
        if self.quiet:
            return None
        if not sys.stderr.isatty():
            return _LineProgress(self.label)
        # imported when the command runs: `joulecast --help` stays light
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._bars = Progress(
            self.label,
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bars.add_task(self.label, total=None)
        self._bars.start()
        return lambda done, total: self._bars.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()


class _LineProgress:
    """``progress(done, total)`` as a line on stderr at most every :data:`LINE_EVERY_S`, and
    at the last one."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._started = time.monotonic()
        self._last = -LINE_EVERY_S

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic() - self._started
        if done < total and now - self._last < LINE_EVERY_S:
            return
        self._last = now
        share = f" ({done / total:.0%})" if total else ""
        print(f"{self.label}: {done}/{total}{share}, {now:.0f} s", file=sys.stderr, flush=True)


def import_command(args: argparse.Namespace) -> int:
    if args.hardware is not None:
        check_hardware_name(args.hardware)  # once, not once per record
    facts: dict[str, object] = {}
    kinds = {_kind(args, f) for f in args.files}
    if args.zeus_gpu and "zeus" not in kinds:
        raise InvalidArgument("--zeus-gpu applies to a Zeus trace folder only")
    if "ecnas" in kinds:
        result, facts = _import_ecnas(args)
    elif "zeus" in kinds:
        result, facts = _import_zeus(args)
    else:
        result = _import(args, _records(args))
    if args.json:
        print(json.dumps({**result.to_json(), **facts}, indent=2))
        return 0
    for problem in result.problems:
        print(f"skipped {problem}")
    for problem in result.dropped:
        print(f"dropped {problem}")
    if "zeus_files" in facts:
        above = facts["zeus_power_above_limit"]
        print(
            f"Zeus NSDI '23: {', '.join(facts['zeus_files'])}; {facts['zeus_workloads']} "
            f"workload graph(s) built; {len(above)} line(s) average above their power limit "
            "(within NVML's ±5 %, kept)"
        )
    elif facts:
        # imported when the command runs: `joulecast --help` stays light
        from collector.ecnas import OVERHEAD_GPU_POWER_W

        pooled = facts["overhead_gpu_power_w_pooled"]
        print(
            f"EC-NAS-Bench: {facts['runs']} run(s) of {facts['architectures']} architecture(s) "
            f"rebuilt; {len(result.dropped)} dropped as unreliable (docs/IMPORT.md); GPU power "
            "while TensorFlow builds graphs (initial segments, pooled): "
            + (f"{pooled:.1f} W" if isinstance(pooled, float) else "n/a")
            + f" (the derivation uses {OVERHEAD_GPU_POWER_W:.0f} W)"
        )
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{verb} {result.imported} row(s) into {args.db} ({result.read} read, "
        f"{result.already_present} already there, {result.duplicates} duplicate(s) in the input, "
        f"{len(result.problems)} bad, {result.graphs} distinct graph(s))"
    )
    for warning in result.warnings:
        print(f"WARNING {warning}; `joulecast fit` refuses these rows", file=sys.stderr)
    return 0
