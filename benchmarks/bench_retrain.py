"""What a Retrain's fit costs in its own process, beside the same fit in this one (one run; quote
the figures it prints).

    .venv/bin/python benchmarks/bench_retrain.py [--db STORE] [--hardware ID] [--repeats 2]

The server fits in a child process (:class:`server.retrain_child.FitInChild`) so that a fit is
bounded and stoppable; the price is the child's start and imports. Printed per run: the wall
time of ``fit_and_publish`` in this process and in a child (each into a fresh folder, so both
fit and publish), the version each published (they must match: the child changes where the fit
runs, not what it fits), and the child's peak resident memory beside its address-space cap.
Alternating the two keeps a drift of the shared machine out of the ratio.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from estimator.publish import fit_and_publish
from server.retrain_child import FitInChild, MiB

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "artifacts" / "measurements" / "cpu-amd-epyc.db"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=STORE)
    parser.add_argument("--hardware", default="cpu-amd-epyc")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}; store {args.db.name}, hardware {args.hardware}")  # fmt: skip
    child = FitInChild()
    for n in range(args.repeats):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            began = time.perf_counter()
            here = fit_and_publish(args.db, args.hardware, Path(a)).version
            here_s = time.perf_counter() - began
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            began = time.perf_counter()
            there = child(args.db, args.hardware, Path(b)).version
            there_s = time.perf_counter() - began
            peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        same = "same version" if here == there else f"DIFFERENT versions {here} / {there}"
        rss = (
            f"{peak_kib / 1024:.0f} MiB"
            if peak_kib > before
            else "n/a (not above an earlier child)"
        )
        print(
            f"run {n + 1}: in process {here_s:.1f} s, in a child {there_s:.1f} s "
            f"(x{there_s / here_s:.2f}), {same}; child peak resident {rss}, "
            f"address-space cap {child.memory_bytes // MiB} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
