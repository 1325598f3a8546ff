"""`joulecast collect` and `joulecast export`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.executors import EXECUTORS
from collector.window import window_clock
from joulecast.errors import JoulecastError
from joulecast.hardware_name import check_hardware_name

if TYPE_CHECKING:
    from collector.data import Clip
    from collector.plans import RunSpec
    from collector.runner import SweepOptions, SweepSummary

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("collect", help="measure a sweep of models (train one epoch, test one pass)")
    p.add_argument("--plan", default="smoke", help="a shipped plan name or a plan .json file")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--data", default="synthetic", help="'synthetic' or the path of a DESED folder")
    p.add_argument("--samples", type=int, help="clips per run (replaces the plan's value)")
    p.add_argument("--batch-size", type=int, help="replaces the plan's batch size")
    p.add_argument("--db", default="runs/measurements.db", help="SQLite measurement store")
    p.add_argument("--repeats", type=int, default=1, help="measure each phase N times")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep")
    p.add_argument(
        "--features",
        choices=("cached", "on-the-fly"),
        default="cached",
        help="mel features computed once (default) or in the loader, as the authors did",
    )
    p.add_argument(
        "--meter",
        default="auto",
        help="auto, nvml, rapl, cpu-time, codecarbon or replay (auto picks the best "
        "available; cpu-time, the estimate where no meter exists, pins torch to one thread)",
    )
    p.add_argument(
        "--core-watts",
        type=float,
        help="per-core active power for --meter cpu-time, W (default: TDP/cores, else 4 W)",
    )
    p.add_argument(
        "--window-seconds",
        type=float,
        help="timed protocol: each window holds whole batches lasting at least this long "
        "(CPU seconds on cpu); the row records the samples used",
    )
    p.add_argument("--trace", help="recorded NVML trace for --meter replay")
    p.add_argument("--with-codecarbon", action="store_true", help="run CodeCarbon alongside")
    p.add_argument("--sample-interval", type=float, default=0.1, help="sampler period, s")
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=None,
        help="idle baseline before each configuration (default: 2 s with a real meter)",
    )
    p.add_argument("--hardware", help="hardware id of the rows (default: derived from device)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="serial",
        help="serial: measure in this process (default); ray: one task per configuration-phase "
        "on a Ray cluster's workers, rows written here (pip install 'joulecast[ray]')",
    )
    p.add_argument(
        "--ray-address",
        help="with --executor ray: an existing cluster (host:6379 or ray://host:10001); "
        "default: a local Ray instance on this machine",
    )
    p.set_defaults(func=collect_command)

    e = sub.add_parser("export", help="export the measurement store as CSV or Parquet")
    e.add_argument("--db", required=True)
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("--out", help="output file (default: next to the store)")
    e.add_argument("--all", action="store_true", help="include failed rows")
    e.set_defaults(func=export_command)

    pl = sub.add_parser("plans", help="list the shipped sweep plans")
    pl.set_defaults(func=plans_command)


def plans_command(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from collector.plans import available_plans, load_plan

    for name in available_plans():
        plan = load_plan(name)
        print(f"{name:14s} {len(plan.runs):3d} runs  {plan.description}")
    return 0


def export_command(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from collector.export import export_store

    db = Path(args.db)
    if not db.is_file():
        raise JoulecastError(f"no measurement store at {db}")
    out = Path(args.out) if args.out else db.with_suffix(f".{args.format}")
    n = export_store(db, out, args.format, status=None if args.all else "ok")
    print(f"wrote {n} rows to {out}")
    return 0


def collect_command(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from collector.data import desed_clips, synthetic_clips
    from collector.plans import load_plan
    from collector.runner import SweepOptions

    if args.hardware is not None:
        check_hardware_name(args.hardware)  # before a meter opens or a row is stored
    if args.ray_address and args.executor != "ray":
        raise JoulecastError("--ray-address needs --executor ray")
    if args.executor == "ray":
        # imported when the command runs: `joulecast --help` stays light
        from collector.executors.ray_executor import import_ray

        import_ray()  # before any work: one line saying what to install
    if args.repeats < 1:
        raise JoulecastError("--repeats must be at least 1")
    if args.window_seconds is not None and not args.window_seconds > 0:
        raise JoulecastError("--window-seconds must be > 0")
    if args.samples is not None and args.samples < 1:
        raise JoulecastError("--samples must be at least 1")
    plan = load_plan(args.plan, samples=args.samples, batch_size=args.batch_size)
    if args.data == "synthetic":
        clips = synthetic_clips(max(r.samples for r in plan.runs))
        data_label = "synthetic"
    else:
        clips = desed_clips(args.data)
        data_label = f"desed:{Path(args.data).resolve()}"
    options = SweepOptions(
        device=args.device,
        repeats=args.repeats,
        resume=args.resume,
        features=args.features,
        seed=args.seed,
        data_label=data_label,
        window_s=args.window_seconds,
        clock=window_clock(args.device),
    )
    run = _collect_on_ray if args.executor == "ray" else _collect_here
    try:
        summary = run(args, plan.runs, clips, options)
    except KeyboardInterrupt:
        print(f"interrupted: finished rows are in {args.db}; rerun with --resume", file=sys.stderr)
        return 130
    hardware = ", ".join(sorted(summary.hardware)) or "no hardware (nothing measured)"
    print(
        f"plan {plan.name} on {hardware}: {summary.measured} rows measured, "
        f"{summary.skipped} already done, {summary.failed} failed -> {args.db}"
    )
    for failure in summary.failures:
        print(f"  failed: {failure}", file=sys.stderr)
    if summary.estimated:
        print(
            "NOTE: energy in these rows is ESTIMATED (no power meter on this machine); "
            "it is labelled estimate-* in the store and never shown as measured.",
            file=sys.stderr,
        )
    if summary.shared:
        print(
            f"NOTE: {summary.shared} of {summary.measured} windows shared what the meter reads "
            "with other work (other processes on the GPU, or at least half a core of other "
            "work beside a CPU-time estimate); each row's notes say how much "
            "(gpu_other_processes, others_busy_cores), and "
            "python -m collector.campaign.repeatability DB splits the spread by it",
            file=sys.stderr,
        )
    if summary.stopped:
        print("stopped before the end: rerun with --resume to finish", file=sys.stderr)
    return 0 if summary.failed == 0 else 3


def _collect_here(
    args: argparse.Namespace, runs: Sequence[RunSpec], clips: Sequence[Clip], base: SweepOptions
) -> SweepSummary:
    """The serial executor: the meter opened here, every run measured in this process."""
    # imported when the command runs: `joulecast --help` stays light
    from collector.executors.serial import run_serial
    from collector.hardware import sweep_hardware
    from collector.meters.select import default_idle_s, estimate_banner, open_meter
    from collector.progress import make_progress
    from joulecast.store import MeasurementStore

    hardware = sweep_hardware(args.device, args.meter, args.trace, args.hardware)
    meter = open_meter(device=args.device, **_meter_settings(args))
    if meter.name == "cpu-time":
        # imported when the command runs: `joulecast --help` stays light
        from collector.meters.cputime import pin_torch_threads

        pin_torch_threads()  # a spinning worker thread would count as work
    banner = estimate_banner(meter)  # names the meter and why, once
    print(
        f"NOTE: {banner}" if banner else f"meter: {meter.name} ({meter.chosen_reason})",
        file=sys.stderr,
    )
    _replay_note(args)
    idle_s = args.idle_seconds if args.idle_seconds is not None else default_idle_s(meter.name)
    options = replace(base, hardware=hardware, idle_s=idle_s)
    with meter, MeasurementStore(args.db) as store, make_progress() as progress:
        summary = run_serial(runs, clips, store, meter, options, progress)
    summary.hardware.add(hardware)
    return summary


def _collect_on_ray(
    args: argparse.Namespace, runs: Sequence[RunSpec], clips: Sequence[Clip], base: SweepOptions
) -> SweepSummary:
    """The Ray executor: each worker opens its own meter and names its own hardware."""
    # imported when the command runs: `joulecast --help` stays light
    from collector.executors.ray_executor import MeterSpec, run_ray
    from collector.progress import make_progress
    from joulecast.store import MeasurementStore

    trace = str(Path(args.trace).resolve()) if args.trace else None  # a path valid on any worker
    meter = MeterSpec(**(_meter_settings(args) | {"trace": trace}))
    print(f"meter: {args.meter}, opened by each Ray worker", file=sys.stderr)
    _replay_note(args)

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    with MeasurementStore(args.db) as store, make_progress() as progress:
        return run_ray(
            runs,
            clips,
            store,
            meter,
            base,
            progress,
            address=args.ray_address,
            hardware=args.hardware,
            idle_s=args.idle_seconds,
            say=say,
        )


def _meter_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The meter options of ``collect`` (as :func:`collector.meters.select.open_meter` and the
    Ray workers' ``MeterSpec`` take them)."""
    return {
        "kind": args.meter,
        "sample_interval_s": args.sample_interval,
        "with_codecarbon": args.with_codecarbon,
        "trace": args.trace,
        "core_watts": args.core_watts,
    }


def _replay_note(args: argparse.Namespace) -> None:
    if args.meter == "replay":
        print(
            "NOTE: replay meter: energies come from a recorded trace, not from this machine",
            file=sys.stderr,
        )
