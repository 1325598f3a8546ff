"""Import Getzner et al.'s RTX 2080 Ti measurements (CodeCarbon emissions.csv) into a store.

Each row measured one PyTorch layer run forward ``forward_passes`` times on a batch of
``batch_size`` random inputs; the layer is written in ``project_name``. This script maps every
file to the import format with templates (see docs/IMPORT.md and README.md here):

- graph: the one-layer graph as a descriptor (built with onnx.helper, profiled like a torch export);
- phase ``test`` (inference only), hardware ``rtx2080ti``;
- samples = forward_passes x batch_size, epochs 1;
- energy_j = ``gpu_energy`` (CodeCarbon reads NVML: ``codecarbon-pynvml``, measured); CodeCarbon's
  whole-machine total (with modelled CPU and RAM) stays in ``codecarbon_energy_j`` and the notes;
- repeat = ``rep_no``; config_id = layer + batch size, so the three repeats share it and leave
  together in leave-one-configuration-out CV (``forward_passes`` differs between repeats).

Usage::

    python examples/getzner/convert.py /work/shared/external/getzner2023 \
        --db artifacts/measurements/rtx2080ti.db [--csv artifacts/measurements/rtx2080ti.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from collector.import_codecarbon import read_codecarbon
from collector.importer import COLUMNS, Record, import_records

HARDWARE = "rtx2080ti"
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
    }


def records(folder: Path, limit: int | None = None) -> Iterator[Record]:
    """Import records of every ``*-raw.csv`` file in ``folder`` (the first ``limit`` of each)."""
    files = sorted(folder.glob("*-raw.csv"))
    if not files:
        raise SystemExit(f"no *-raw.csv files in {folder}")
    for file in files:
        layer = file.stem.split("_", 1)[1].removesuffix("-raw")
        for n, record in enumerate(read_codecarbon(file, templates(layer))):
            if limit is not None and n >= limit:
                break
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
    rows = list(records(args.folder, args.limit))
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {len(rows)} rows to {args.csv}")
    if args.db:
        result = import_records(rows, args.db, skip_bad=args.skip_bad)
        print(result.to_json() | {"problems": result.to_json()["problems"][:20]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
