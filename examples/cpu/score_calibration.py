"""Score a published CPU calibration on configurations it never saw.

``joulecast calibrate --device cpu --db SUITE.db --artifacts DIR`` publishes a predictor of this
CPU (fitted on the suite's rows, or another CPU's carried to them when the budget left too
few). This script asks that predictor, as served from ``DIR``, for every held-out
configuration-phase of a store (by default plans ``holdout-cpu`` and ``holdout-cpu-b``: twelve
configurations each, of the four paper families, that no other plan holds) and prints its
median error and how many measurements fall inside its 90 % interval, per held-out set.

    joulecast calibrate --device cpu --db runs/cal.db --artifacts /tmp/cal-artifacts
    PYTHONPATH=. python examples/cpu/score_calibration.py --artifacts /tmp/cal-artifacts \\
        --hardware cpu-intel-xeon-f6m207 --db artifacts/measurements/cpu-xeon-f6m207.db

``--fit-plan PLAN`` first does what ``calibrate`` does after measuring, on the rows of that
plan kept in ``--db`` (or ``--suite-db``) (a copy of them in a temporary store, published into a
temporary copy of ``--artifacts``), then scores the result; ``--passes N`` keeps only the
suite's first N repeats (what a shorter budget would have measured):

    PYTHONPATH=. python examples/cpu/score_calibration.py --fit-plan calibrate-cpu \\
        --db artifacts/measurements/cpu-xeon-f6m207.db
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from estimator.dataset import aggregate_repeats, from_rows
from estimator.publish import fit_and_publish
from estimator.service import PredictorRegistry
from joulecast.graph import profile_graph
from joulecast.measurement import Row
from joulecast.store import MeasurementStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--hardware", help="the calibrated predictor's (default: the rows')")
    parser.add_argument("--db", type=Path, required=True, help="store of the held-out rows")
    parser.add_argument("--plans", default="holdout-cpu,holdout-cpu-b")
    parser.add_argument("--fit-plan", help="fit this plan's rows first, as calibrate does")
    parser.add_argument("--suite-db", type=Path, help="store of --fit-plan's rows (default --db)")
    parser.add_argument(
        "--passes", type=int, help="fit only the suite's first N repeats (a shorter calibration)"
    )
    args = parser.parse_args()

    with MeasurementStore(args.db, read_only=True) as store:
        rows = [r for r in store.rows() if r.plan in args.plans.split(",")]
        graphs = {r.graph_sha256: store.get_graph(r.graph_sha256) for r in rows if r.graph_sha256}
    held = rows[0].hardware
    args.hardware = args.hardware or held
    with tempfile.TemporaryDirectory() as scratch:
        if args.fit_plan:
            args.artifacts = _fit(args, Path(scratch))
        _score(args, PredictorRegistry(args.artifacts), rows, graphs, held)


def _fit(args: argparse.Namespace, scratch: Path) -> Path:
    """Publish what calibrate would from ``--fit-plan``'s rows into a copy of --artifacts."""
    suite_db, artifacts = scratch / "suite.db", scratch / "artifacts"
    shutil.copytree(args.artifacts / "predictors", artifacts / "predictors")
    source = args.suite_db or args.db
    with MeasurementStore(source, read_only=True) as store, MeasurementStore(suite_db) as out:
        for row in store.rows(hardware=args.hardware):
            if row.plan == args.fit_plan and (args.passes is None or row.repeat < args.passes):
                out.put_graph(store.get_graph(row.graph_sha256))  # type: ignore[arg-type]
                out.put_row(row, store.trace(row.run_key))
    # calibrate's rule, as fit_and_publish applies it: another CPU's predictor carried to too
    # few rows, this CPU's own predictors fitted on enough
    published = fit_and_publish(suite_db, args.hardware, artifacts).version
    passes = "" if args.passes is None else f" (first {args.passes} pass(es))"
    print(f"fitted plan {args.fit_plan}'s rows{passes}: version {published}")
    return artifacts


def _score(
    args: argparse.Namespace,
    registry: PredictorRegistry,
    rows: list[Row],
    graphs: dict[str, bytes | None],
    held: str,
) -> None:
    print(f"{args.hardware} (from {args.artifacts}) answering {held}'s held-out rows")
    for plan in args.plans.split(","):
        part = [r for r in rows if r.plan == plan]
        if not part:
            continue
        frame = aggregate_repeats(from_rows(part, graphs, held).frame)
        ratio, inside, phases = [], [], []
        for row in frame.itertuples():
            graph = graphs[next(r.graph_sha256 for r in part if r.config_id == row.config_id)]
            answer = registry.predict(
                profile_graph(graph),  # type: ignore[arg-type]
                batch_size=int(row.batch_size),
                samples=int(row.samples),
                epochs=int(row.epochs),
                hardware=args.hardware,
            )
            phase = getattr(answer, row.phase)
            if phase is None:  # this predictor does not answer the phase: said, not scored
                print(f"  {row.config_id} b{row.batch_size} {row.phase}: no answer")
                continue
            measured = row.energy_per_sample_j * row.samples * row.epochs
            ratio.append(phase.energy_j / measured)
            inside.append(phase.energy_low_j <= measured <= phase.energy_high_j)
            phases.append(row.phase)
        r, ok, ph = np.array(ratio), np.array(inside), np.array(phases)
        for name, mask in (("train", ph == "train"), ("test", ph == "test"), ("all", ph != "")):
            print(
                f"{plan:14} {name:5}: median error {np.median(np.abs(r[mask] - 1)):.1%}, "
                f"{int(ok[mask].sum())} of {int(mask.sum())} inside the 90 % interval, "
                f"answers x{r[mask].min():.2f}..x{r[mask].max():.2f} of the measurement"
            )


if __name__ == "__main__":
    main()
