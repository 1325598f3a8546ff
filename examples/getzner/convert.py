"""Import Getzner et al.'s CPU inference measurements (CodeCarbon + RAPL) into a store.

Each row measured one PyTorch layer run forward ``forward_passes`` times on the CPU (a 2-core
allocation of an Intel Xeon Gold 5120) on a batch of ``batch_size`` random inputs; the layer is
written in ``project_name``. This script maps every file to the import format with templates
(see docs/IMPORT.md and README.md here):

- graph: the one-layer graph as a descriptor (built with onnx.helper, profiled like a torch export);
- phase ``test`` (inference only), hardware ``xeon-gold-5120-2c``;
- samples = forward_passes x batch_size, epochs 1;
- energy_j = ``cpu_energy`` (CodeCarbon read Intel RAPL: ``codecarbon-intel-rapl``, measured).
  RAPL reads the whole package of a shared 14-core socket, so the reading includes what the
  rest of the socket drew; the notes say so. The idle GPU's energy (``gpu_energy``) and
  CodeCarbon's RAM model (``ram_energy``) stay in the notes, never as the measurement;
- dropped: runs the authors' slurm logs flag (a ``[codecarbon ERROR`` RAPL line during the run)
  and rows with ``cpu_power`` <= 0 W or above the package TDP (105 W); see :func:`drop_reasons`;
- repeat = ``rep_no``; config_id = layer + batch size, so the three repeats share it and leave
  together in grouped CV (``forward_passes`` differs between repeats).

Usage::

    python examples/getzner/convert.py /work/shared/external/getzner2023 \
        --db artifacts/measurements/xeon-gold-5120-2c.db
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from collector.import_codecarbon import read_codecarbon
from collector.importer import COLUMNS, Record, import_records

HARDWARE = "xeon-gold-5120-2c"
SOURCE = "codecarbon-intel-rapl"
TDP_W = 105.0
"""Package TDP of the Intel Xeon Gold 5120 (Intel ARK): a higher mean power is a bad reading."""
REPEATS = 3
"""Each configuration was run three times in a row (``rep_no`` 1..3)."""
NOTE = (
    "CPU inference on a 2-core allocation of an Intel Xeon Gold 5120 (Getzner et al. 2023); "
    "energy_j = cpu_energy, RAPL package energy of a shared 14-core socket (includes what the "
    "rest of the socket drew); gpu_energy is an idle RTX 2080 Ti and ram_energy CodeCarbon's "
    "model (3/8 W per GB), both kept here only"
)
LAYERS = {
    "linear": (
        "Linear(in_features={input_size},out_features={output_size})",
        "Linear-{input_size}-{output_size}",
    ),
    "conv2d": (
        "Conv2d(in_channels={in_channels},out_channels={out_channels},kernel_size={kernel_size},"
        "stride={stride},padding={padding},image_size={image_size})",
        "Conv2d-{in_channels}-{out_channels}-k{kernel_size}-s{stride}-p{padding}-i{image_size}",
    ),
    "maxpool2d": (
        "MaxPool2d(in_channels={in_channels},kernel_size={kernel_size},stride={stride},"
        "padding={padding},image_size={image_size})",
        "MaxPool2d-{in_channels}-k{kernel_size}-s{stride}-p{padding}-i{image_size}",
    ),
}
_PROGRESS = re.compile(r"^(\d+)/(\d+) \(config_no/rep_no\)")
_TQDM = re.compile(r"^current config:(\[[^\]]*\])")
_ERROR = re.compile(r"\[codecarbon ERROR @ (\d\d):(\d\d):(\d\d)\]")
_DAY_S = 86400


def templates(layer: str) -> dict[str, str]:
    graph, config = LAYERS[layer]
    return {
        "graph": graph,
        "config_id": f"getzner/{config}-b{{batch_size}}",
        "hardware": HARDWARE,
        "phase": "test",
        "batch_size": "{batch_size}",
        "samples": "{forward_passes}*{batch_size}",
        "epochs": "1",
        "repeat": "{rep_no}",
        "plan": "getzner2023",
        "variant": "paper",
        "num_layers": "1",
        "hidden_size": "-",
        "data": "random",
        "device": "cpu",
        "device_name": "Intel Xeon Gold 5120 (2 cores of a shared socket)",
        "notes": NOTE,
    }


@dataclass(frozen=True)
class Window:
    """When one row's run took place: its end (time of day, s) and duration (s)."""

    end_s: float
    duration_s: float

    def contains(self, t_s: float, slack_s: float = 1.0) -> bool:
        """True when time of day ``t_s`` falls in the run (across midnight too)."""
        since_start = (t_s - (self.end_s - self.duration_s - slack_s)) % _DAY_S
        return since_start <= self.duration_s + 2 * slack_s


@dataclass
class Flags:
    """Rows (0-based data-row indices) a slurm log flags, and error lines it could not place."""

    rows: set[int] = field(default_factory=set)
    unplaced: list[str] = field(default_factory=list)


def flagged_rows(log_lines: Sequence[str], windows: Sequence[Window]) -> Flags:
    """The rows whose RAPL reading the authors' slurm log flags.

    Two log formats exist. ``00_*`` logs print ``config_no/rep_no`` before each run; an error
    line belongs to the last one: row = config_no x 3 + rep_no - 1. ``02_*`` logs print a tqdm
    line ``current config:[...]`` per configuration (no repeat number): the n-th distinct
    configuration is config_no n, and the error's time of day picks which of its three runs
    it fell in (the rows' end timestamps and durations). In the ``00_*`` logs both rules agree.
    """
    flags = Flags()
    progress: tuple[int, int] | None = None
    config, described = -1, None
    for line in log_lines:
        if found := _PROGRESS.match(line):
            progress = (int(found[1]), int(found[2]))
        elif (found := _TQDM.match(line)) and found[1] != described:
            described, config = found[1], config + 1
        for error in _ERROR.finditer(line):  # tqdm does not end its line: errors can follow it
            t_s = int(error[1]) * 3600 + int(error[2]) * 60 + int(error[3])
            if progress is not None:
                flags.rows.add(progress[0] * REPEATS + progress[1] - 1)
                continue
            rows = range(config * REPEATS, min((config + 1) * REPEATS, len(windows)))
            hits = [i for i in rows if config >= 0 and windows[i].contains(t_s)]
            if len(hits) == 1:
                flags.rows.add(hits[0])
            else:
                flags.unplaced.append(error.group(0))
    return flags


def _time_of_day(stamp: str) -> float:
    t = datetime.fromisoformat(stamp)
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


@dataclass
class Dropped:
    """How many rows were dropped and why, per file."""

    counts: Counter[str] = field(default_factory=Counter)
    unplaced: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "dropped": dict(sorted(self.counts.items())),
            "total": sum(self.counts.values()),
            "unplaced_error_lines": len(self.unplaced),
        }


def drop_reasons(raw: dict[str, str], index: int, flags: Flags) -> str | None:
    """Why row ``index`` (raw CodeCarbon columns) is dropped, or None to keep it."""
    if index in flags.rows:
        return "slurm log flags its RAPL reading ([codecarbon ERROR] during the run)"
    try:
        power = float(raw.get("cpu_power") or "nan")
    except ValueError:
        return "cpu_power is not a number"
    if not power > 0:
        return "cpu_power <= 0 W (RAPL saw nothing)"
    if power > TDP_W:
        return f"cpu_power above the package TDP ({TDP_W:g} W)"
    return None


def records(
    folder: Path, limit: int | None = None, dropped: Dropped | None = None
) -> Iterator[Record]:
    """Import records of every ``*-raw.csv`` in ``folder`` minus the bad runs (see module doc).

    ``limit``: the first N rows of each file only. ``dropped`` collects the drop counts.
    """
    files = sorted(folder.glob("*-raw.csv"))
    if not files:
        raise SystemExit(f"no *-raw.csv files in {folder}")
    dropped = dropped if dropped is not None else Dropped()
    for file in files:
        layer = file.stem.split("_", 1)[1].removesuffix("-raw")
        with file.open(newline="", encoding="utf-8") as fh:
            raws = list(csv.DictReader(fh))
        log = file.with_name(file.name.replace("-raw.csv", "-slurm-log.out"))
        if log.is_file():
            windows = [Window(_time_of_day(r["timestamp"]), float(r["duration"])) for r in raws]
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            flags = flagged_rows(lines, windows)
            dropped.unplaced.extend(f"{log.name}: {u}" for u in flags.unplaced)
        else:
            flags = Flags()
            dropped.unplaced.append(f"{file.name}: no slurm log; RAPL errors unknown")
        coded = read_codecarbon(file, templates(layer), energy="cpu_energy", source=SOURCE)
        for n, (raw, record) in enumerate(zip(raws, coded, strict=True)):
            if limit is not None and n >= limit:
                break
            reason = drop_reasons(raw, n, flags)
            if reason is not None:
                dropped.counts[f"{file.name}: {reason}"] += 1
                continue
            yield record


def write_csv(rows: list[Record], out: Path) -> None:
    """The records in the joulecast import format (graphs as descriptors)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(COLUMNS), extrasaction="raise")
        writer.writeheader()
        for record in rows:
            writer.writerow({k: v for k, v in record.values.items() if v is not None})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--db", type=Path, help="measurement store to import into")
    parser.add_argument("--csv", type=Path, help="also write the joulecast import CSV here")
    parser.add_argument("--limit", type=int, help="first N rows of each file only")
    parser.add_argument("--skip-bad", action="store_true")
    args = parser.parse_args(argv)
    dropped = Dropped()
    rows = list(records(args.folder, args.limit, dropped))
    print(json.dumps(dropped.to_json(), indent=1))
    for line in dropped.unplaced[:10]:
        print(f"error line not placed in a run (row kept): {line}")
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {len(rows)} rows to {args.csv}")
    if args.db:
        result = import_records(rows, args.db, skip_bad=args.skip_bad)
        print(result.to_json() | {"problems": result.to_json()["problems"][:20]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
