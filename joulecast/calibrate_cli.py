"""``joulecast calibrate``: a few minutes of measurement on this machine's GPU (or CPU) turn the
transfer model's guess into a predictor of it.

The one command that composes the collector (``collector.calibrate`` measures the reference
suite into a store) and the estimator (``estimator.transfer.calibrate`` fits the transfer model
to a GPU's rows; ``estimator.carry`` carries another CPU's predictor to a CPU's rows, or, with
no such prior, ``estimator.publish.fit_and_publish`` fits the CPU's predictors alone): part of the
``joulecast`` entry point, which alone may import both, and only once the command runs.
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from joulecast.errors import FailedPrecondition
from joulecast.measurement import PHASES

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from collector.calibrate import SuiteResult
    from estimator.dataset import Dataset
    from estimator.description import PredictorDescription
    from estimator.transfer.calibrate import HeldOutItem

DEFAULT_DB = Path("runs/calibrate.db")
FIT_RESERVE_S = 10.0
"""Seconds of the budget kept for fitting and publishing after measuring on a GPU (its
calibration takes a few)."""
CPU_FIT_RESERVE_S = 15.0
"""The same on a CPU: its suite fitted alone and its before/after table took 7 s on this
project's 2-core VM (a carry about 1.5 s), and a CPU half as fast must still end in time."""
DEFAULT_ARTIFACTS = Path("artifacts")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure a reference suite on this GPU or CPU (3 minutes) and publish a "
        "calibrated predictor of it",
        description="Measure joulecast's reference suite of this device on this machine "
        "(on a GPU: dense, convolution, recurrence and attention at small and large batches, "
        "timed windows, 3 interleaved repeats; on a CPU: some twenty networks of the paper's "
        "families, once each), then publish a predictor of it: on a catalogued GPU the "
        "transfer model fitted to the rows (answers tier 'calibrated'), on a CPU its own "
        "predictors fitted on the rows (or, when the budget left fewer than 20 "
        "configuration-phases, another CPU's served predictor carried to them). A rerun with "
        "the same --db resumes (nothing finished is measured again).",
    )
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default: cuda)")
    p.add_argument(
        "--hardware",
        help="hardware id of the rows and the predictor (default: the catalog's id of the GPU "
        "NVML names, else its name slugged; on a CPU cpu-<name>-f<family>m<model>, e.g. "
        "cpu-amd-epyc-f26m2; a replayed trace's rows are replay-<trace>; a catalogued GPU's id "
        "is refused for another device's rows)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=180.0,
        help="the whole command's time, s (default 180): measuring stops early enough to fit "
        "and publish within it; a rerun measures what was left",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"store (default {DEFAULT_DB})")
    p.add_argument(
        "--artifacts",
        type=Path,
        default=DEFAULT_ARTIFACTS,
        help="artifacts folder holding the transfer model; the result is published there",
    )
    p.add_argument(
        "--meter",
        default="auto",
        help="auto (NVML on a GPU, RAPL or the cpu-time estimate on a CPU), nvml, rapl, "
        "cpu-time or replay",
    )
    p.add_argument("--trace", help="recorded NVML trace for --meter replay")
    p.add_argument(
        "--allow-busy-gpu",
        action="store_true",
        help="measure even while other processes compute on the GPU (their work is metered too)",
    )
    p.add_argument("--plan", help=argparse.SUPPRESS)
    p.add_argument("--window-s", type=float, default=2.0, help="window length, s (default 2)")
    p.add_argument(
        "--repeats",
        type=int,
        help="repeats per item (default 3 on a GPU, 1 on a CPU: its suite spends the budget "
        "on more configurations instead)",
    )
    p.add_argument(
        "--idle-s", type=float, default=1.0, help="idle baseline per configuration, s (GPU)"
    )
    p.add_argument("--core-watts", type=float, help="per-core power for --meter cpu-time, W")
    p.set_defaults(func=run)


GPU_SUITE = "calibrate"
"""The GPU's suite: few configurations, 3 repeats, spanning what the transfer model's
parameters need (``collector/plans/calibrate.json``)."""
CPU_SUITE = "calibrate-cpu"
"""The CPU's suite: some twenty configurations of the paper's families measured once, enough to
fit this CPU's own roofline (``collector/plans/calibrate-cpu.json``). On the Intel Xeon VM of
2026-12-06, four runs of it answered two held-out sets of twelve configurations at
10.5-19.6 % and 13.9-18.8 % median error, every one answered; two runs of the GPU's suite
carrying the shipped EPYC predictor answered them at 12.0-28.6 % and 15.0-25.5 %, refusing 4
of 24 (``artifacts/measurements/cpu-xeon-f6m207.README.md``)."""
GPU_REPEATS = 3
CPU_REPEATS = 1
"""A CPU's suite measures each configuration once: its fit needs many configurations more
than it needs each one's noise averaged (repeats of a window of CPU time spread by a median 8-11 %
on this project's VMs, and by as much between runs minutes apart, so three repeats would buy a
third of the configurations and hardly a steadier answer). Measured on the Intel Xeon VM: four
passes of the suite in ten minutes answered held-out configurations no better than the first
pass alone (``artifacts/measurements/cpu-xeon-f6m207-run5.README.md``)."""


def _on_cpu(args: argparse.Namespace) -> bool:
    """Whether this calibration is a CPU's (a replayed GPU trace is calibrated as the GPU it was
    recorded on, whatever device runs the work)."""
    return bool(args.device == "cpu" and args.meter != "replay")


def _suite_defaults(args: argparse.Namespace) -> None:
    """The plan and the repeats of this device's suite, where the command line names none."""
    on_cpu = _on_cpu(args)
    if args.plan is None:
        args.plan = CPU_SUITE if on_cpu else GPU_SUITE
    if args.repeats is None:
        args.repeats = CPU_REPEATS if on_cpu else GPU_REPEATS


def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    _suite_defaults(args)
    # imported when the command runs: `joulecast --help` stays light
    from collector.calibrate import SuiteSettings, measure_suite

    on_cpu = _on_cpu(args)
    settings = SuiteSettings(
        db=args.db,
        device=args.device,
        hardware=args.hardware,
        budget_s=max(args.budget_s - (CPU_FIT_RESERVE_S if on_cpu else FIT_RESERVE_S), 1.0),
        started_at=began,
        meter=args.meter,
        trace=args.trace,
        plan=args.plan,
        window_s=args.window_s,
        repeats=args.repeats,
        idle_s=args.idle_s,
        allow_busy_gpu=args.allow_busy_gpu,
        core_watts=args.core_watts,
    )
    if on_cpu:
        _keep_a_larger_sweep(args)
    try:
        suite = measure_suite(settings)
    except KeyboardInterrupt:
        print(f"interrupted: finished rows are in {args.db}; rerun to resume", file=sys.stderr)
        return 130
    summary = suite.summary
    print(
        f"measured {summary.measured} rows ({summary.skipped} already done, {summary.failed} "
        f"failed) of {suite.hardware} in {suite.seconds:.0f} s -> {args.db}"
    )
    for note in suite.notes:
        print(f"NOTE: {note}", file=sys.stderr)
    for failure in summary.failures:
        print(f"  failed: {failure}", file=sys.stderr)
    if suite.meter == "replay":
        print(
            f"NOTE: these rows are metered by a replayed trace ({args.trace}): a recording of "
            f"other work played back to test the code path, not a measurement; they are named "
            f"{suite.hardware} and every answer of this calibration says so",
            file=sys.stderr,
        )
    if suite.estimated:
        print(
            "NOTE: energy in these rows is ESTIMATED (no power meter): the predictor will say so",
            file=sys.stderr,
        )
    if on_cpu:
        return _fit_cpu(args, suite)
    return _calibrate_gpu(args, suite)


def _calibrate_gpu(args: argparse.Namespace, suite: SuiteResult) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from estimator.transfer import artifact
    from estimator.transfer.calibrate import calibrate_and_publish, held_out_items

    done = calibrate_and_publish(args.db, suite.hardware, args.artifacts)
    model = done.model
    prior = artifact.load(args.artifacts)
    assert prior is not None  # calibrate_and_publish refused otherwise
    info = model.calibration
    print(
        f"calibrated {model.hardware} (GPU {model.gpu}): {model.rows} rows of "
        f"{len(info['configurations'])} configurations, prior width {info['sigma']:g} "
        f"(chosen by leaving a configuration out: {info['sigma_scores'] or 'too few to choose'})"
    )
    print(f"published {done.path} (version {model.version}); answers now say tier 'calibrated'")
    # imported when the command runs: `joulecast --help` stays light
    from estimator.published import list_hardware

    if model.hardware in list_hardware(args.artifacts):
        print(
            f"NOTE: {model.hardware} has a measured predictor under {args.artifacts}: it keeps "
            "answering; the calibration is kept beside it",
            file=sys.stderr,
        )
    print()
    print(format_items(held_out_items(done, prior)))
    _print_ask(args, model.hardware)
    return 0


def _fit_cpu(args: argparse.Namespace, suite: SuiteResult) -> int:
    """Fit this CPU's own predictors on the suite's rows; when the budget left too few of
    them (:data:`estimator.carry.MAX_CONFIG_PHASES`), carry another CPU's served predictor to
    them instead, where ``--artifacts`` serves one."""
    # imported when the command runs: `joulecast --help` stays light
    from estimator.carry import MAX_CONFIG_PHASES, carry_and_publish, choose_prior
    from joulecast.store import MeasurementStore

    with MeasurementStore(args.db, read_only=True) as store:
        measured = {
            (r.config_id, r.phase, r.batch_size) for r in store.rows(hardware=suite.hardware)
        }
    if len(measured) >= MAX_CONFIG_PHASES:
        return _fit_cpu_alone(args, suite)
    prior = choose_prior(args.artifacts, exclude=suite.hardware)
    if prior is None:
        print(
            f"NOTE: {len(measured)} configuration-phases are too few to fit well alone, and "
            f"{args.artifacts} serves no other CPU's predictor to carry to them: they are "
            "fitted alone; rerun with the same --db to measure the rest of the suite",
            file=sys.stderr,
        )
        return _fit_cpu_alone(args, suite)
    done = carry_and_publish(args.db, suite.hardware, args.artifacts)
    bundle = done.published.bundle
    base = prior.bundle
    print(
        f"carried {base.hardware} (version {prior.version}, {base.dataset.get('rows')} rows) "
        f"to {suite.hardware} with {bundle.dataset['rows']} rows of "
        f"{bundle.dataset['configs']} configurations"
    )
    print(f"published {suite.hardware} version {done.published.version} under {args.artifacts}")
    print()
    print(format_carried(done.carry.held_out, bundle.q_log, suite.estimated))
    _print_ask(args, suite.hardware)
    return 0


def format_carried(
    held_out: pd.DataFrame, q_log: Mapping[str, Mapping[str, float]], estimated: bool = False
) -> str:
    """Each suite item answered by the prior as it is, and by a carry fitted without its
    configuration (with that carry's interval), beside the measurement (headed ``estimated``
    when the rows' energy is an estimate)."""
    header = (
        f"{'held out (mJ per sample)':34} {'phase':5} {_rows_word(estimated):>9} {'prior':>9} "
        f"{'carried':>9} {'interval':>17}"
    )
    lines = [header, "-" * len(header)]
    for row in held_out.itertuples():
        q = q_log.get(row.phase, {}).get("carried", math.nan)
        loco = row.loco_j if math.isfinite(row.loco_j) else None
        span = "-" if loco is None else _span(loco * math.exp(-q), loco * math.exp(q))
        name = f"{row.config_id} b{row.batch_size}"
        lines.append(
            f"{name[:34]:34} {row.phase:5} {_mj(row.measured_j):>9} {_mj(row.prior_j):>9} "
            f"{_mj(loco):>9} {span:>17}"
        )
    for phase in PHASES:
        part = held_out[(held_out["phase"] == phase) & held_out["loco_j"].notna()]
        if part.empty:
            continue
        q = q_log.get(phase, {}).get("carried", math.nan)
        ratio = part["loco_j"] / part["measured_j"]
        before = (part["prior_j"] / part["measured_j"] - 1).abs().median()
        inside = int((ratio.map(math.log).abs() <= q).sum())
        lines.append(
            f"{phase}: carried median error {(ratio - 1).abs().median():.0%} (the prior as it "
            f"is: {before:.0%}), {inside} of {len(part)} inside x{math.exp(2 * q):.1f}"
        )
    return "\n".join(lines)


def _fit_cpu_alone(args: argparse.Namespace, suite: SuiteResult) -> int:
    # imported when the command runs: `joulecast --help` stays light
    import pandas as pd

    from estimator.artifacts import load_version
    from estimator.canary import CanaryFailed
    from estimator.dataset import from_store
    from estimator.description import describe_published
    from estimator.fit_cli import format_summary
    from estimator.publish import fit_and_publish

    # read and featurized once: the fit and the before/after table both need the rows
    dataset = from_store(args.db, suite.hardware)
    with tempfile.TemporaryDirectory() as scratch:
        held_csv = Path(scratch) / "held_out.csv"
        try:
            described = fit_and_publish(
                args.db, suite.hardware, args.artifacts, held_csv, dataset=dataset
            )
        except CanaryFailed as failed:
            # The version is kept aside, not served: its held-out scores still say why.
            kept = describe_published(load_version(args.artifacts, suite.hardware, failed.version))
            print(f"version {failed.version} of {suite.hardware} is kept aside (not served):")
            _print_loco(kept)
            raise
        held = pd.read_csv(held_csv) if held_csv.exists() else None
    print(format_summary(described))
    _print_loco(described)
    if held is not None:
        print()
        print(format_fitted(held, described, _before(args, dataset)))
    _print_ask(args, suite.hardware)
    return 0


def _before(args: argparse.Namespace, dataset: Dataset) -> Before:
    """Each suite row (by configuration, phase and batch size), and the answer per sample of
    the CPU predictor that served before this calibration (another CPU's, as ``choose_prior``
    picks it; None where there was none)."""
    # imported when the command runs: `joulecast --help` stays light
    from estimator.carry import choose_prior
    from estimator.dataset import aggregate_repeats
    from estimator.predictors.base import frame_rows

    frame = aggregate_repeats(dataset.frame)
    prior = choose_prior(args.artifacts, exclude=dataset.hardware)
    answers: dict[tuple[str, str, int], tuple[float, float | None]] = {}
    rows = zip(frame_rows(frame), frame["config_id"], frame["energy_per_sample_j"], strict=True)
    for row, config, measured in rows:
        before = None
        if prior is not None and row.phase in prior.bundle.phases:
            model = prior.bundle.predictors[prior.bundle.selected[row.phase]]
            before = float(model.predict_row(row))
        batch = int(row.features["batch_size"])  # type: ignore[call-overload]
        answers[(str(config), row.phase, batch)] = (float(measured), before)
    if prior is None:
        return Before(None, {}, answers)
    bundle = prior.bundle
    q_log = {phase: bundle.q_log[phase][bundle.selected[phase]] for phase in bundle.phases}
    return Before(bundle.hardware, q_log, answers)


@dataclass(frozen=True)
class Before:
    """What answered for this CPU before its calibration: ``prior`` (the hardware whose
    predictor that was, None when none served), the half-width (natural log) of its 90 %
    interval per phase, and, per (configuration, phase, batch size) of the suite, the measured
    and the prior's energy per sample (J)."""

    prior: str | None
    q_log: Mapping[str, float]
    answers: Mapping[tuple[str, str, int], tuple[float, float | None]]


def format_fitted(held: pd.DataFrame, described: PredictorDescription, before: Before) -> str:
    """Each suite item answered before the calibration (another CPU's predictor as it is) and
    after it (this CPU's selected predictor fitted without the item's configuration, with its
    90 % interval), beside the measurement (headed ``estimated`` when the rows' energy is an
    estimate), in mJ per sample."""
    label = before.prior or "none"
    header = (
        f"{'held out (mJ per sample)':34} {'phase':5} "
        f"{_rows_word(described.energy_is_estimate):>9} {label[:12]:>12} "
        f"{'interval':>17} {'fitted':>9} {'interval':>17}"
    )
    lines = [header, "-" * len(header)]
    summary = []
    for phase in described.phases:
        name = described.selected[phase]
        width = described.scores.get("loco", {}).get(phase, {}).get(name, {}).get("width_factor")
        q = math.log(width) / 2 if width and math.isfinite(width) else math.nan
        part = held[(held["phase"] == phase) & (held["predictor"] == name)]
        ratios, priors, inside = [], [], 0
        for (config, batch), got in part.groupby(["config_id", "batch_size"], sort=True):
            known = before.answers.get((str(config), phase, int(batch)))
            if known is None:
                continue
            measured, prior_j = known
            ratio = float(got["predicted_j"].sum() / got["measured_j"].sum())
            fitted = measured * ratio
            ratios.append(ratio)
            inside += int(abs(math.log(ratio)) <= q)
            if prior_j is not None:
                priors.append(prior_j / measured)
            was = "-"
            if prior_j is not None and phase in before.q_log:
                half = before.q_log[phase]
                was = _span(prior_j * math.exp(-half), prior_j * math.exp(half))
            lines.append(
                f"{f'{config} b{batch}'[:34]:34} {phase:5} {_mj(measured):>9} {_mj(prior_j):>12} "
                f"{was:>17} {_mj(fitted):>9} "
                f"{_span(fitted * math.exp(-q), fitted * math.exp(q)):>17}"
            )
        if ratios:
            earlier = "none served"
            if priors:
                earlier = f"{label} as it is: {_pct(100 * _median_error(priors))}"
                if phase in before.q_log:
                    half = before.q_log[phase]
                    hits = sum(abs(math.log(r)) <= half for r in priors)
                    earlier += f", {hits} of {len(priors)} inside x{math.exp(2 * half):.1f}"
            summary.append(
                f"{phase}: fitted here, held out by configuration, median error "
                f"{_pct(100 * _median_error(ratios))}, {inside} of {len(ratios)} inside "
                f"x{math.exp(2 * q):.1f} (before: {earlier})"
            )
    return "\n".join([*lines, *summary])


def _rows_word(estimated: bool) -> str:
    """What a table calls the rows' energy: a meter's reading, or an estimate (no meter)."""
    return "estimated" if estimated else "measured"


def _median_error(ratios: list[float]) -> float:
    return statistics.median(abs(r - 1) for r in ratios) if ratios else math.nan


def ask_command(hardware: str, artifacts: Path) -> str:
    """The command that asks the new predictor (in this process, from the folder it was
    published in, whichever folder the command runs from)."""
    return (
        f"joulecast predict MODEL.onnx --hardware {hardware} "
        f"--artifacts {shlex.quote(str(Path(artifacts).resolve()))}"
    )


def _print_ask(args: argparse.Namespace, hardware: str) -> None:
    print(f"\nask it: {ask_command(hardware, args.artifacts)}")


def _print_loco(described: PredictorDescription) -> None:
    """Each selected predictor's leave-one-configuration-out figures on the suite."""
    loco = described.scores.get("loco", {})
    for phase, name in described.selected.items():
        s = loco.get(phase, {}).get(name, {})
        coverage = s.get("coverage_90")
        print(
            f"  held out by configuration ({phase}, {name}): median error "
            f"{_pct(s.get('median_ape_pct'))}, MAPE {_pct(s.get('mape_pct'))}, 90 % interval "
            f"x{s.get('width_factor', float('nan')):.1f} covering "
            f"{_pct(None if coverage is None else 100 * coverage)}"
        )


def _keep_a_larger_sweep(args: argparse.Namespace) -> None:
    """FailedPrecondition, before anything is measured, when ``--artifacts`` already serves a
    predictor of this CPU fitted on more rows than the whole suite would hold: the suite must
    not replace a sweep (``--hardware cpu-amd-epyc`` names the shipped 858-row predictor)."""
    # imported when the command runs: `joulecast --help` stays light
    from collector.hardware import default_hardware
    from collector.plans import load_plan
    from estimator.artifacts import load_current
    from estimator.published import list_hardware

    hardware = args.hardware or default_hardware("cpu")
    if hardware not in list_hardware(args.artifacts):
        return
    existing = int(load_current(args.artifacts, hardware).bundle.dataset.get("rows", 0))
    suite_rows = len(load_plan(args.plan).runs) * 2 * args.repeats
    if existing > suite_rows:
        raise FailedPrecondition(
            f"{args.artifacts} already serves a predictor of {hardware} fitted on {existing} "
            f"rows; the suite's {suite_rows} would replace it. Name this calibration with "
            "--hardware NAME or publish it to another --artifacts folder"
        )


def _pct(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.0f} %"


def _mj(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.3g}"


def _span(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{_mj(low)}..{_mj(high)}"


def format_items(items: list[HeldOutItem]) -> str:
    """The before/after table: each suite item answered without its configuration's rows."""
    header = (
        f"{'held out (mJ per sample)':34} {'phase':5} {'measured':>9} {'transferred':>11} "
        f"{'interval':>17} {'calibrated':>10} {'interval':>17}"
    )
    lines = [header, "-" * len(header)]
    for it in items:
        name = f"{it.configuration} b{it.batch_size}"
        lines.append(
            f"{name[:34]:34} {it.phase:5} {_mj(it.measured_j):>9} {_mj(it.before_j):>11} "
            f"{_span(it.before_low_j, it.before_high_j):>17} {_mj(it.after_j):>10} "
            f"{_span(it.after_low_j, it.after_high_j):>17}"
        )
    for phase in PHASES:
        part = [i for i in items if i.phase == phase and i.after_j is not None]
        if not part:
            continue
        after = statistics.median([abs(i.after_j / i.measured_j - 1) for i in part])  # type: ignore[operator]
        inside = sum(
            1
            for i in part
            if i.after_low_j is not None and i.after_low_j <= i.measured_j <= i.after_high_j  # type: ignore[operator]
        )
        line = f"{phase}: calibrated median error {after:.0%}, {inside} of {len(part)} inside"
        served = [i for i in part if i.before_j is not None]
        if served:
            before = statistics.median([abs(i.before_j / i.measured_j - 1) for i in served])  # type: ignore[operator]
            line += f"; transferred {before:.0%}"
        lines.append(line)
    return "\n".join(lines)
