"""The GPU campaign in one command that ends inside a deadline: the paper's sweep, then more.

On the lent device machine (Python 3.12, torch with CUDA, nvidia-ml-py, numpy, pandas, onnx,
scikit-learn; no DeepSpeed, CodeCarbon, rich, ...; no network) it runs, in order and until
``--budget-s`` seconds have passed:

1. the paper plan (43 configurations x 2 phases, 1578 clips, batch 8, 1 epoch, synthetic
   DESED-shaped data), repeats interleaved (repeat 0 of every configuration, then repeat 1, ...)
   up to ``--repeats``, metered by the NVML energy counter with the 100 ms sampler and an idle
   baseline before each configuration;
2. with the time left, the dataset-size and batch-size plans (same protocol).

Every finished row is committed to the SQLite store in ``--out`` at once, so a run cut at its
limit still returns what it measured, and a rerun with the same ``--out`` resumes. ``--out``
also receives ``identity.txt`` (``nvidia-smi -q`` or the CPU model), ``versions.json`` and
``campaign.json`` (what ran, for how long, what is left). ``--device cpu --plans smoke`` is the
dry run of the same code on a machine without a GPU (tests/collector/test_campaign.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from collector.hardware import cpu_model, default_hardware, software_versions, sweep_hardware
from collector.meters.cputime import pin_torch_threads
from collector.meters.select import estimate_banner, open_meter
from collector.window import window_clock
from joulecast.errors import InvalidArgument
from joulecast.hardware_name import check_hardware_name
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)

DEFAULT_PLANS = ("paper", "dataset-size", "batch-size")
DEFAULT_BUDGET_S = 420.0
"""Seven minutes of sweeping: inside the device's 9-minute command with start-up to spare."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m collector.campaign", description=__doc__)
    p.add_argument("--out", default=os.environ.get("OUT", "runs/campaign"), help="output folder")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (dry run)")
    p.add_argument("--plans", default=",".join(DEFAULT_PLANS), help="plans in order, comma list")
    p.add_argument("--repeats", type=int, default=3, help="repeats per configuration-phase")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="sweeping time, s")
    p.add_argument("--idle-seconds", type=float, default=1.0, help="idle baseline per config")
    p.add_argument("--meter", default="auto", help="meter kind (auto: NVML on cuda)")
    p.add_argument("--samples", type=int, help="replace every plan's samples (dry runs)")
    p.add_argument(
        "--window-seconds",
        type=float,
        help="timed windows of at least this many seconds instead of the plans' samples "
        "(on a fast GPU the paper's 1578 clips last tenths of a second: too short for NVML)",
    )
    p.add_argument("--db-name", default="measurements.db")
    p.add_argument(
        "--hardware",
        help="hardware id of the rows (default: the catalog's id of the GPU NVML names, else "
        "its name slugged; a catalogued GPU's id is refused for another device's rows)",
    )
    return p


def _identity(device: str) -> str:
    if device.startswith("cuda") and shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(
                ["nvidia-smi", "-q"], capture_output=True, text=True, timeout=30, check=False
            )
            return done.stdout or done.stderr
        except (OSError, subprocess.SubprocessError) as err:
            return f"nvidia-smi failed: {err}"
    return f"cpu: {cpu_model()} ({os.cpu_count()} logical CPUs); no nvidia-smi\n"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.hardware is not None:
        try:
            # before the folder, the meter or a row
            sweep_hardware(args.device, args.meter, None, args.hardware)
        except InvalidArgument as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    start = time.monotonic()
    stop_at = start + args.budget_s
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # These import torch: only once the arguments are checked, so --help and a refused
    # --hardware answer at once.
    from collector.data import synthetic_clips
    from collector.executors.serial import run_serial
    from collector.plans import load_plan
    from collector.progress import LineProgress
    from collector.runner import SweepOptions

    (out / "identity.txt").write_text(_identity(args.device))
    (out / "versions.json").write_text(software_versions() + "\n")
    hardware = check_hardware_name(args.hardware or default_hardware(args.device))
    plans = [load_plan(name, samples=args.samples) for name in args.plans.split(",") if name]
    clips = synthetic_clips(max(r.samples for plan in plans for r in plan.runs))
    meter = open_meter(kind=args.meter, device=args.device)
    if meter.name == "cpu-time":
        pin_torch_threads()
    banner = estimate_banner(meter)
    print(f"NOTE: {banner}" if banner else f"meter: {meter.chosen_reason}", file=sys.stderr)
    report: dict[str, object] = {"hardware": hardware, "device": args.device, "plans": {}}
    db = out / args.db_name
    with meter, MeasurementStore(db) as store:
        for plan in plans:
            options = SweepOptions(
                device=args.device,
                hardware=hardware,
                repeats=args.repeats,
                resume=True,
                idle_s=args.idle_seconds if not meter.estimated else 0.0,
                data_label="synthetic",
                stop_at=stop_at,
                window_s=args.window_seconds,
                clock=window_clock(args.device),
            )
            began = time.monotonic()
            with LineProgress() as progress:
                summary = run_serial(plan.runs, clips, store, meter, options, progress)
            report["plans"][plan.name] = {  # type: ignore[index]
                "measured": summary.measured,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "stopped_by_budget": summary.stopped,
                "seconds": round(time.monotonic() - began, 1),
                "failures": summary.failures[:20],
            }
            (out / "campaign.json").write_text(json.dumps(report, indent=1) + "\n")
            log.info("plan %s: %s", plan.name, report["plans"][plan.name])  # type: ignore[index]
            if summary.stopped:
                break
        rows = store.count()
    report["wall_s"] = round(time.monotonic() - start, 1)
    report["rows"] = rows
    (out / "campaign.json").write_text(json.dumps(report, indent=1) + "\n")
    print(
        f"campaign on {hardware}: {rows} rows in {db} after {report['wall_s']} s", file=sys.stderr
    )
    return 0
