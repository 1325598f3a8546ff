"""What an unmeasured op costs per byte moved, relative to a kernel-1 MaxPool, from the rows of
``python -m collector.campaign.elementwise``.

A layer-sum predictor prices ops its single-layer data never measured per activation byte, at
the energy per byte of the hardware's kernel-1, stride-1 MaxPool rows. PyTorch runs that pool
through a scalar loop, ReLU and its kin through vectorised kernels, so the two are far apart
per byte; the experiment measures how far on one machine, and this module turns its rows into
one ratio per ONNX op: per round and shape, (op's energy per pass - the identity control's) per
profiled byte over the same for the reference pool, then the median over rounds and shapes.
A ratio of two CPU-time readings is a ratio of CPU times (the meter's per-core power cancels),
so it carries to another x86 CPU as far as the two kernels' relative speed does: the Getzner
Xeon's kernel-1 pool runs at 716 ps per byte (median of its large stride-1 rows), the VM's at
500-1,000.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REFERENCE = "MaxPool-k1"
CONTROL = "Identity"
OTHER = "*"
"""Key of the ratio used for an op the experiment did not measure: the median of the ops'."""


@dataclass(frozen=True)
class OpRatio:
    """One op's energy per byte over the reference pool's: median and spread over windows."""

    op: str
    ratio: float
    low: float
    high: float
    windows: int


def op_ratios(path: Path) -> dict[str, OpRatio]:
    """Per ONNX op, its ratio to the reference, plus :data:`OTHER` (median of the ops')."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    cells: dict[tuple[str, str], dict[str, tuple[float, int, str]]] = defaultdict(dict)
    for r in rows:
        cells[(r["round"], r["shape"])][r["item"]] = (
            float(r["energy_per_pass_j"]),
            int(r["bytes_moved"]),
            r["onnx_op"],
        )
    per_op: dict[str, list[float]] = defaultdict(list)
    for items in cells.values():
        if REFERENCE not in items or CONTROL not in items:
            continue
        loop_j = items[CONTROL][0]
        ref_j, ref_bytes, _ = items[REFERENCE]
        ref = max(ref_j - loop_j, 0.0) / ref_bytes
        if ref <= 0:
            continue
        for name, (energy, moved, op) in items.items():
            if name in (REFERENCE, CONTROL) or moved <= 0:
                continue
            per_op[op].append(max(energy - loop_j, 0.0) / moved / ref)
    out = {
        op: OpRatio(op, statistics.median(v), min(v), max(v), len(v))
        for op, v in sorted(per_op.items())
    }
    if out:
        medians = [r.ratio for r in out.values()]
        out[OTHER] = OpRatio(OTHER, statistics.median(medians), min(medians), max(medians), 0)
    return out
