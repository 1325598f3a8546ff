"""Scheduling overhead of the Ray executor per configuration-phase, against the serial one.

Runs a plan (default: the smoke plan, 43 configurations x 2 phases) twice on this machine with
the cpu-time meter: serially in this process, then on a local Ray instance with one task in
flight at a time (so that both measure one thing after another and only the executor differs).
Prints, per configuration-phase:

- overhead = Ray's time - serial time (Ray: a task's round trip, submission to stored rows;
  serial: the time between two consecutive rows), median and spread (10th-90th percentile,
  min-max). A Ray task rebuilds the model, opens its meter and exports the weightless graph
  itself, which the serial sweep does once per configuration: that counts as overhead here;
- Ray's own share: round trip - the seconds the task spent in its worker (submission,
  scheduling, shipping the rows and the graph back);
- the ratio of the rows' estimated energy, Ray over serial (the cpu-time meter counts the
  worker process's CPU seconds, Ray's own threads included).

    PYTHONPATH=. python benchmarks/bench_executor.py [--plan smoke] [--samples 8]

Needs the ray extra (pip install 'joulecast[ray]').
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from collector.data import synthetic_clips
from collector.executors.ray_executor import (
    NODE_RESOURCE,
    MeterSpec,
    import_ray,
    local_ray,
    run_ray,
)
from collector.executors.serial import run_serial
from collector.meters.cputime import CpuTimeMeter, pin_torch_threads
from collector.plans import load_plan
from collector.runner import Progress, SweepOptions
from joulecast.measurement import PHASES
from joulecast.store import MeasurementStore


class _Stamps(Progress):
    """Time (perf_counter) of each finished row, in order."""

    def __init__(self) -> None:
        self.started = 0.0
        self.rows: list[float] = []

    def sweep_started(self, total_rows: int) -> None:
        self.started = time.perf_counter()

    def row_done(self, label: str, ok: bool) -> None:
        self.rows.append(time.perf_counter())


def _spread(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    deciles = statistics.quantiles(ms, n=10) if len(ms) > 1 else [ms[0]] * 9
    return (
        f"median {statistics.median(ms):7.1f} ms  p10 {deciles[0]:7.1f}  p90 {deciles[-1]:7.1f}"
        f"  min {ms[0]:7.1f}  max {ms[-1]:7.1f}  (n={len(ms)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", default="smoke")
    parser.add_argument("--samples", type=int, help="clips per run (default: the plan's)")
    args = parser.parse_args()
    ray = import_ray()
    plan = load_plan(args.plan, samples=args.samples)
    clips = synthetic_clips(max(r.samples for r in plan.runs))
    options = SweepOptions(hardware="bench")
    pin_torch_threads()
    with tempfile.TemporaryDirectory() as tmp:
        stamps = _Stamps()
        began = time.perf_counter()
        with CpuTimeMeter() as meter, MeasurementStore(Path(tmp) / "serial.db") as store:
            run_serial(plan.runs, clips, store, meter, options, stamps)
            serial_j = {r.run_key: r.energy_j for r in store.rows()}
        serial_wall_s = time.perf_counter() - began
        edges = [stamps.started, *stamps.rows]
        serial_s = [b - a for a, b in itertools.pairwise(edges)]

        init_began = time.perf_counter()
        with local_ray(ray, {NODE_RESOURCE: 1}, num_cpus=1, log_to_driver=False):
            init_s = time.perf_counter() - init_began
            began = time.perf_counter()
            with MeasurementStore(Path(tmp) / "ray.db") as store:
                summary = run_ray(
                    plan.runs,
                    clips,
                    store,
                    MeterSpec("cpu-time"),
                    options,
                    hardware="bench",
                    max_in_flight=1,
                )
                ray_j = {r.run_key: r.energy_j for r in store.rows()}
            ray_wall_s = time.perf_counter() - began
    by_label = {t.label: t for t in summary.tasks}
    labels = [
        f"{s.config.config_id} s{s.samples} b{s.batch_size} {phase}"
        for s in plan.runs
        for phase in PHASES
    ]
    round_trip = [by_label[label].round_trip_s for label in labels]
    own = [by_label[label].round_trip_s - by_label[label].worker_s for label in labels]
    overhead = [r - s for r, s in zip(round_trip, serial_s, strict=True)]
    load = os.getloadavg()
    print(f"plan {plan.name}: {len(labels)} configuration-phases, cpu-time meter, 1 in flight")
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"serial  per configuration-phase: {_spread(serial_s)}")
    print(f"ray     per configuration-phase: {_spread(round_trip)}")
    print(f"overhead (ray - serial)        : {_spread(overhead)}")
    print(f"ray's own (round trip - worker): {_spread(own)}")
    ratios = [ray_j[k] / serial_j[k] for k in serial_j if serial_j[k] > 0 and k in ray_j]
    print(
        f"estimated energy ray / serial (cpu-time: the worker process's CPU seconds, Ray's "
        f"threads included): median {statistics.median(ratios):.3f}, "
        f"min {min(ratios):.3f}, max {max(ratios):.3f}"
    )
    print(
        f"totals: serial {serial_wall_s:.1f} s, ray {ray_wall_s:.1f} s "
        f"(+ {init_s:.1f} s to start the local Ray instance)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
