"""``joulecast fit`` and ``joulecast predictors``: fit and publish predictors, list them."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from joulecast.errors import NotFound
from joulecast.hardware_name import check_hardware_name
from joulecast.store import check_store_file

if TYPE_CHECKING:
    from estimator.description import PredictorDescription

DEFAULT_ARTIFACTS = Path("artifacts")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``predictors`` to the ``joulecast`` command."""
    fit = subparsers.add_parser(
        "fit",
        help="fit predictors on measurements, cross-validate them and publish a version",
        description="Featurize one hardware's measurements, score every predictor by "
        "leave-one-configuration-out and leave-one-family-out CV, publish the fitted predictors.",
    )
    fit.add_argument("--db", required=True, type=Path, help="measurement store (SQLite)")
    fit.add_argument("--hardware", help="hardware to fit (default: the only one in the store)")
    fit.add_argument(
        "--out", type=Path, default=DEFAULT_ARTIFACTS, help="artifacts folder (default: artifacts/)"
    )
    fit.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fit.add_argument(
        "--cv-out",
        type=Path,
        help="write the leave-one-configuration-out predictions as CSV (for `joulecast report --cv`)",
    )
    fit.add_argument(
        "--allow-idle-meter",
        action="store_true",
        help="fit measured GPU rows even when their power never left an idle board's (refused "
        "by default: that meter did not see the work)",
    )
    fit.set_defaults(func=run_fit)

    listing = subparsers.add_parser(
        "predictors", help="list published predictors: hardware, version, energy source, scores"
    )
    listing.add_argument(
        "--artifacts", type=Path, default=DEFAULT_ARTIFACTS, help="artifacts folder"
    )
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_predictors)


def run_fit(args: argparse.Namespace) -> int:
    if args.hardware is not None:
        check_hardware_name(args.hardware)  # before the store is read or anything fitted
    check_store_file(args.db)
    from estimator.publish import fit_and_publish  # XGBoost and friends: only when fitting

    result = fit_and_publish(
        args.db,
        args.hardware,
        args.out,
        held_out_csv=args.cv_out,
        allow_idle_meter=args.allow_idle_meter,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=1, default=str))
    else:
        print(format_summary(result))
        print()
        print(format_scores(result.scores))
    return 0


def run_predictors(args: argparse.Namespace) -> int:
    # imported when the command runs: `joulecast --help` stays light
    from estimator.artifacts import list_hardware
    from estimator.service import PredictorRegistry
    from estimator.transfer.files import calibrated_summaries

    if not list_hardware(args.artifacts) and not calibrated_summaries(args.artifacts):
        raise NotFound(
            f"no published predictors under {args.artifacts}/predictors, and no calibrated GPU"
        )
    described = PredictorRegistry(args.artifacts).describe()
    if args.json:
        print(json.dumps([d.as_dict() for d in described], indent=1, default=str))
        return 0
    for entry in described:
        print(format_summary(entry))
        print()
    return 0


def format_summary(entry: PredictorDescription) -> str:
    estimate = " (ESTIMATED energy)" if entry.energy_is_estimate else ""
    lines = [
        f"hardware {entry.hardware}  version {entry.version}  "
        f"energy source {entry.energy_source}{estimate}",
        f"  data: {entry.dataset.get('rows')} rows, {entry.dataset.get('configs')} "
        f"configurations, families {', '.join(entry.dataset.get('families', []))}",
    ]
    for phase, name in entry.selected.items():
        loco = entry.scores.get("loco", {}).get(phase, {}).get(name, {})
        width = _fmt(loco.get("width_factor"), ".1f")
        lines.append(
            f"  {phase}: {name} (LOCO MAPE {_fmt(loco.get('mape_pct'), '.1f')} %, log error "
            f"{_fmt(loco.get('log_rmse'), '.2f')}, bias {_fmt(loco.get('bias_log'), '+.2f')}, "
            f"interval {width if width == 'n/a' else 'x' + width}); unseen family -> "
            f"{entry.fallback_unseen_family[phase]}"
        )
    lines.extend(f"  note: {note}" for note in entry.notes)
    return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return format(value, spec)


def format_scores(scores: dict) -> str:
    """The CV table: scheme x phase x predictor -> MAPE, median APE, R² (log), log error,
    bias (mean log residual, > 0 predicts low), coverage and median width of the 90 % interval."""
    header = (
        f"{'scheme':6} {'phase':5} {'predictor':33} {'MAPE %':>8} {'medAPE %':>9} "
        f"{'R2 log':>7} {'logerr':>7} {'bias':>6} {'cov90':>6} {'width':>6} {'n':>4}"
    )
    lines = [header, "-" * len(header)]
    for scheme, by_phase in scores.items():
        for phase, by_name in sorted(by_phase.items(), reverse=True):
            for name, s in by_name.items():
                lines.append(
                    f"{scheme:6} {phase:5} {name:33} {_fmt(s['mape_pct'], '8.1f')} "
                    f"{_fmt(s['median_ape_pct'], '9.1f')} {_fmt(s['r2_log'], '7.3f')} "
                    f"{_fmt(s.get('log_rmse'), '7.2f')} {_fmt(s.get('bias_log'), '+6.2f')} "
                    f"{_fmt(s['coverage_90'], '6.2f')} {_fmt(s.get('width_factor'), '6.1f')} "
                    f"{s['n']:>4}"
                )
    return "\n".join(lines)
