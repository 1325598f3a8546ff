"""Markdown of the composition experiment (whole networks against the sum of their layers) and
of the Getzner single-layer rows' package power, for LAYER-SUM.md (see check_networks.py)."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pandas as pd

from estimator.layerwise.composition import analyse, best_rule

RULE_TEXT = {
    "sum": "plain sum of the layers",
    "sum-minus-loop": "sum less (layers - 1) x the identity control",
    "once-fraction": "sum less f x the layers' per-call costs",
    "ratio": "r x the sum",
    "per-boundary": "sum plus b J per layer boundary",
    "one-constant": "k x MACs (k: median J/MAC of the single Conv/Linear layers)",
}


def _machine(windows: pd.DataFrame) -> list[str]:
    others = windows["others_busy_cores"].dropna()
    load = windows["loadavg_1m"]
    start, end = windows["timestamp_utc"].min(), windows["timestamp_utc"].max()
    core_w = windows["core_power_w"].median()
    return [
        f"- Machine: `{windows['cpu_model'].iloc[0]}` (collector.hardware.cpu_model()), 2 cores, "
        f"no RAPL or NVML; torch {windows['torch_version'].iloc[0]}, one thread.",
        f"- Time: {start} to {end} UTC; {len(windows)} windows, "
        f"{windows['round'].nunique()} interleaved rounds, {windows['network'].nunique()} networks.",
        f"- Load: 1-minute load average median {load.median():.1f} (max {load.max():.1f}); "
        f"cores other work kept busy per window median {others.median():.2f} "
        f"(max {others.max():.2f}): other agents worked on the same two cores.",
        f"- Meter: `{windows['energy_source'].iloc[0]}`, the process's CPU seconds x "
        f"{core_w:g} W per core: an ESTIMATE, proportional to CPU time, not a measurement.",
    ]


def composition_section(csv_path: Path) -> tuple[list[str], dict[str, float | str]]:
    """The experiment's Markdown and its headline figures (once-fraction, measured/sum, the
    plain sum's and the best rule's leave-one-network-out median APE)."""
    windows = pd.read_csv(csv_path)
    nets, costs, scores = analyse(windows)
    core_w = float(windows["core_power_w"].median())
    best = best_rule(scores)
    once = next(s for s in scores if s.rule == "once-fraction")
    ratios = np.array([n.measured_j / n.layer_sum_j for n in nets])
    lines = [
        f"## The composition experiment (`{csv_path.name}`)",
        "",
        *_machine(windows),
        "",
        "Leave-one-network-out answers of each rule (parameters fitted on the other networks; "
        "the parameter shown is fitted on all):",
        "",
        "| rule | what | median APE % | median pred/meas | max APE % | parameter |",
        "|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.rule} | {RULE_TEXT[s.rule]} | {s.median_ape_pct:.1f} | "
            f"{s.median_pred_over_meas:.3f} | {s.max_ape_pct:.1f} | {s.parameter:.3g} |"
        )
    lines += [
        "",
        f"Best: **{best.rule}** ({best.median_ape_pct:.1f} % median APE). Measured / sum over "
        f"the {len(nets)} networks: median {np.median(ratios):.3f} "
        f"(range {ratios.min():.3f}-{ratios.max():.3f}). The once-fraction f = "
        f"{once.parameter:.3f}: the share of each layer's per-call cost a network pays once "
        "rather than once per layer.",
        "",
        "Per-call cost per operator (intercept at zero work of its smaller single layers):",
        "",
        "| operator | layers | per-call µJ | per-call CPU µs | median share of a layer |",
        "|---|---|---|---|---|",
    ]
    for op, c in sorted(costs.items()):
        lines.append(
            f"| {op} | {c.layers} | {c.per_call_j * 1e6:.1f} | {c.per_call_j / core_w * 1e6:.1f} "
            f"| {c.median_share:.0%} |"
        )
    lines += [
        "",
        "| network | layers | measured µJ/pass | sum µJ/pass | measured/sum | repeat CV |",
        "|---|---|---|---|---|---|",
    ]
    for n in sorted(nets, key=lambda n: n.name):
        lines.append(
            f"| {n.name} | {n.layers} | {n.measured_j * 1e6:.1f} | {n.layer_sum_j * 1e6:.1f} | "
            f"{n.measured_j / n.layer_sum_j:.3f} | {n.repeat_cv:.1%} |"
        )
    plain = next(s for s in scores if s.rule == "sum")
    summary: dict[str, float | str] = {
        "once_fraction": once.parameter,
        "ratio_median": float(np.median(ratios)),
        "sum_ape_pct": plain.median_ape_pct,
        "sum_pred_over_meas": plain.median_pred_over_meas,
        "best_rule": best.rule,
        "best_ape_pct": best.median_ape_pct,
        "best_parameter": best.parameter,
    }
    return lines, summary


def power_section(getzner_dir: Path, median_w: float) -> list[str]:
    """Package power of the Getzner single-layer rows, per file (faulty readings left out)."""
    files = sorted(glob.glob(str(getzner_dir / "*-raw.csv")))
    if not files:
        return []
    lines = [
        "| file | rows | cpu_power 5 % | median | 95 % (W) |",
        "|---|---|---|---|---|",
    ]
    every = []
    for path in files:
        power = pd.read_csv(path)["cpu_power"]
        power = power[(power > 0) & (power <= 105)]
        every.append(power)
        q = power.quantile([0.05, 0.5, 0.95])
        lines.append(
            f"| {Path(path).name} | {len(power)} | {q[0.05]:.1f} | {q[0.5]:.1f} | {q[0.95]:.1f} |"
        )
    power = pd.concat(every)
    needed = median_w / 1.13
    share = float((power[power > 40] < needed + 1).mean())
    lines += [
        "",
        f"An over-prediction of 1.13 would follow from power alone if the held-back runs drew "
        f"{needed:.1f} W instead of the rows' median {median_w:.1f} W. "
        f"{share:.1%} of the single-layer rows (leaving out the half-power readings of failed "
        f"RAPL reads, below 40 W) drew less than {needed + 1:.0f} W.",
    ]
    return lines


def control_section(main_csv: Path, control_csv: Path) -> list[str]:
    """The allocator control: measured/sum of the control's networks beside the same networks
    in the main run."""
    control = pd.read_csv(control_csv)
    main = pd.read_csv(main_csv)
    ratio = {
        label: {n.name: n.measured_j / n.layer_sum_j for n in analyse(frame)[0]}
        for label, frame in (("control", control), ("main", main))
    }
    names = sorted(set(ratio["control"]) & set(ratio["main"]))
    pinned = np.array([ratio["control"][n] for n in names])
    plain = np.array([ratio["main"][n] for n in names])
    env = str(control["malloc_env"].dropna().iloc[0]) if control["malloc_env"].notna().any() else ""
    return [
        f"Allocator control (`{control_csv.name}`, {control['timestamp_utc'].min()} to "
        f"{control['timestamp_utc'].max()} UTC, load average median "
        f"{control['loadavg_1m'].median():.1f}, others busy median "
        f"{control['others_busy_cores'].median():.2f} cores; `{env}`): measured/sum median "
        f"{np.median(pinned):.3f} over {len(names)} networks, against {np.median(plain):.3f} "
        f"for the same networks with the allocator as it comes (largest difference "
        f"{np.max(np.abs(pinned - plain)):.2f}). The allocator does not make a network dearer "
        "than its layers.",
    ]
