"""`joulecast collect` and `joulecast export`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from joulecast.errors import JoulecastError

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
    from collector.plans import available_plans, load_plan

    for name in available_plans():
        plan = load_plan(name)
        print(f"{name:14s} {len(plan.runs):3d} runs  {plan.description}")
    return 0


def export_command(args: argparse.Namespace) -> int:
    from collector.export import export_store

    db = Path(args.db)
    if not db.is_file():
        raise JoulecastError(f"no measurement store at {db}")
    out = Path(args.out) if args.out else db.with_suffix(f".{args.format}")
    n = export_store(db, out, args.format, status=None if args.all else "ok")
    print(f"wrote {n} rows to {out}")
    return 0


def collect_command(args: argparse.Namespace) -> int:
    from collector.data import desed_clips, synthetic_clips
    from collector.hardware import default_hardware
    from collector.meters.select import estimate_banner, open_meter
    from collector.plans import load_plan
    from collector.progress import make_progress
    from collector.runner import SweepOptions, run_sweep
    from joulecast.store import MeasurementStore

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
    hardware = args.hardware or default_hardware(args.device)
    if args.meter == "replay" and not args.hardware:
        hardware = f"replay-{Path(args.trace or 'trace').stem}"
    meter = open_meter(
        kind=args.meter,
        device=args.device,
        sample_interval_s=args.sample_interval,
        with_codecarbon=args.with_codecarbon,
        trace=args.trace,
        core_watts=args.core_watts,
    )
    if meter.name == "cpu-time":
        from collector.meters.cputime import pin_torch_threads

        pin_torch_threads()  # a spinning worker thread would count as work
    banner = estimate_banner(meter)  # names the meter and why, once
    print(
        f"NOTE: {banner}" if banner else f"meter: {meter.name} ({meter.chosen_reason})",
        file=sys.stderr,
    )
    if meter.name == "replay":
        print(
            "NOTE: replay meter: energies come from a recorded trace, not from this machine",
            file=sys.stderr,
        )
    idle_s = args.idle_seconds
    if idle_s is None:
        idle_s = 2.0 if meter.name in ("nvml", "rapl") else 0.0
    options = SweepOptions(
        device=args.device,
        hardware=hardware,
        repeats=args.repeats,
        resume=args.resume,
        features=args.features,
        idle_s=idle_s,
        seed=args.seed,
        data_label=data_label,
        window_s=args.window_seconds,
        clock=_window_clock(args.device),
    )
    with meter, MeasurementStore(args.db) as store, make_progress() as progress:
        try:
            summary = run_sweep(plan.runs, clips, store, meter, options, progress)
        except KeyboardInterrupt:
            print(
                f"interrupted: finished rows are in {args.db}; rerun with --resume", file=sys.stderr
            )
            return 130
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
    return 0 if summary.failed == 0 else 3


def _window_clock(device: str) -> Callable[[], float]:
    """The clock that sizes timed windows: CPU seconds on cpu, wall seconds on a GPU."""
    import time

    return time.perf_counter if device.startswith("cuda") else time.process_time
