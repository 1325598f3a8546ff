"""``joulecast fit-transfer``: fit the GPU transfer model on measured stores and publish it."""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from joulecast import idle_meter
from joulecast.store import check_store_file

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fit-transfer",
        help="fit the GPU transfer model on measured training rows of several GPUs and publish it",
        description="Cross-validate (leave one GPU out, leave one workload out) beside two "
        "baselines, fit on every row, publish artifacts/transfer/gpu-training.json and write a "
        "report. Rows of hardware the GPU catalog does not know are left out.",
    )
    p.add_argument("--db", action="append", required=True, type=Path, help="store (repeatable)")
    p.add_argument("--out", type=Path, default=Path("artifacts"), help="artifacts folder")
    p.add_argument("--report", type=Path, help="folder for REPORT.md and the CV CSVs")
    p.add_argument(
        "--exclude-workload",
        action="append",
        default=[],
        help="a workload (config id, or plan for NAS-Bench sweeps) to leave out (repeatable)",
    )
    p.add_argument(
        "--exam-db",
        action="append",
        default=[],
        type=Path,
        help="a store whose rows only test the published model (zero-shot), never fit it",
    )
    p.add_argument("--note", action="append", default=[], help="a line for the report (why)")
    p.add_argument("--no-publish", action="store_true", help="score and report only")
    p.add_argument(
        "--allow-idle-meter",
        action="store_true",
        help="fit GPU rows whose power never left an idle board's (refused by default)",
    )
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.set_defaults(func=run)


def _lookup(hardware: str):  # type: ignore[no-untyped-def]
    # imported when the command runs: `joulecast --help` stays light
    from estimator.transfer.gpu import GpuRates
    from joulecast.hardware import find_one_gpu

    spec = find_one_gpu(hardware)
    return None if spec is None else GpuRates.from_spec(spec)


def run(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from estimator.transfer import artifact, report
    from estimator.transfer.data import from_stores
    from estimator.transfer.train import train

    for path in (*args.db, *args.exam_db):
        check_store_file(path)
    if not args.allow_idle_meter:
        for path in args.db:  # rows an idle board's meter read would teach it idle power
            idle_meter.refuse(path)
    data = from_stores(args.db, _lookup, phases=("train",))
    frame = data.frame
    if frame.empty:
        print(f"error: no usable training rows of a catalogued GPU (left out: {data.skipped})")
        return 2
    kept = frame[~frame["workload"].isin(args.exclude_workload)]
    sources = Counter(kept["energy_source"])
    print(
        f"{len(kept)} training rows of {kept['hardware'].nunique()} GPUs and "
        f"{kept['workload'].nunique()} workloads ({len(frame) - len(kept)} excluded by name); "
        f"left out: {data.skipped or 'none'}"
    )
    trained = train(frame, excluded=args.exclude_workload, sources=dict(sources))
    model = trained.model
    if not args.no_publish:
        path = artifact.publish(model, args.out)
        print(f"published transfer model {model.version} to {path}")
    if args.report:
        exam = None
        if args.exam_db:
            exam_rows = from_stores(args.exam_db, _lookup).frame
            exam = report.exam_frame(model, exam_rows)
        notes = tuple(args.note)
        written = report.write(args.report, model, trained.cv, trained.scores, exam, notes)
        print(f"report: {written}")
    if args.json:
        print(json.dumps(model.scores, indent=1))
    else:
        cols = ["scheme", "group", "n", "transfer_median_ape", "joules-per-flop_median_ape"]
        cols += ["tdp-over-peak_median_ape", "coverage90"]
        print(trained.scores[cols].round(3).to_string(index=False))
    return 0
