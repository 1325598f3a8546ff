"""``joulecast import``: measurements made elsewhere into a measurement store (docs/IMPORT.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from joulecast.errors import InvalidArgument

if TYPE_CHECKING:
    from collector.importer import Record

FORMATS = ("auto", "joulecast", "codecarbon")
ENERGY_CHOICES = ("cpu_energy", "energy_consumed", "gpu_energy", "ram_energy")
"""``sorted(collector.import_codecarbon.ENERGY_COLUMNS)``, spelled out so that ``register``
imports nothing heavy (the importer pulls in onnx); a test keeps the two equal."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import measurements made elsewhere (joulecast CSV/JSONL or CodeCarbon emissions.csv)",
        description="Validate every row, then import them all in one transaction. Importing the "
        "same rows twice adds nothing. Format: docs/IMPORT.md.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
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
    cc.add_argument("--hardware", help="hardware name of every row")
    cc.add_argument("--phase", choices=("train", "test"), help="phase of every row")
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
    p.set_defaults(func=import_command)


def templates_from(args: argparse.Namespace) -> dict[str, str]:
    templates: dict[str, str] = {}
    for item in args.set:
        name, sep, template = item.partition("=")
        if not sep or not name.strip():
            raise InvalidArgument(f"--set {item!r} is not FIELD=TEMPLATE")
        templates[name.strip()] = template
    if args.graph_column:
        templates["graph"] = "{" + args.graph_column + "}"
    if args.graph_template:
        templates["graph"] = args.graph_template
    if args.hardware:
        templates["hardware"] = args.hardware
    if args.phase:
        templates["phase"] = args.phase
    return templates


def _records(args: argparse.Namespace) -> list[Record]:
    from collector.import_codecarbon import looks_like_codecarbon, read_codecarbon
    from collector.importer import read_records

    records: list[Record] = []
    for file in args.files:
        kind = args.format
        if kind == "auto":
            kind = "codecarbon" if looks_like_codecarbon(file) else "joulecast"
        if kind == "codecarbon":
            records.extend(
                read_codecarbon(file, templates_from(args), energy=args.energy, source=args.source)
            )
        else:
            records.extend(read_records(file))
    return records


def import_command(args: argparse.Namespace) -> int:
    from collector.importer import import_records

    result = import_records(_records(args), args.db, skip_bad=args.skip_bad, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    for problem in result.problems:
        print(f"skipped {problem}")
    verb = "would import" if args.dry_run else "imported"
    print(
        f"{verb} {result.imported} row(s) into {args.db} ({result.read} read, "
        f"{result.already_present} already there, {result.duplicates} duplicate(s) in the input, "
        f"{len(result.problems)} bad, {result.graphs} distinct graph(s))"
    )
    return 0
