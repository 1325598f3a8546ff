"""REPORT.md: hardware and energy source at the top, the claims table, the figures, the notes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from estimator.report import beside_paper, meter
from estimator.report.claims import THRESHOLDS, UNTESTABLE, ClaimResult
from estimator.report.data import ReportData
from estimator.report.figures import FigureFile
from estimator.report.stats import fmt


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}"


def header(data: ReportData) -> list[str]:
    sources = ", ".join(f"`{s}` ({n} rows)" for s, n in sorted(data.sources.items()))
    lines = [
        f"# joulecast report — {data.hardware}",
        "",
        f"- **Hardware**: `{data.hardware}`; device {', '.join(data.devices) or 'unknown'}"
        + (f"; {', '.join(data.device_names)}" if data.device_names else "")
        + (f"; CPU {', '.join(data.cpu_models)}" if data.cpu_models else ""),
        f"- **Energy source**: {sources}",
        f"- **Rows**: {len(data.runs)} successful runs; {len(data.configs)} configuration-phases "
        + (
            f"after averaging repeats; no workload is shared by most configurations, so figures "
            f"and claims C1–C6 use every configuration with its energy and duration rescaled to "
            f"{data.reference_samples} samples and 1 epoch (energy per sample × "
            f"{data.reference_samples}; "
            + (
                f"batch {data.reference_batch_size}, each configuration's longest measurement"
                if data.reference_batch_size
                else "batch as measured"
            )
            + f") ({len(data.reference)} configuration-phases)."
            if data.rescaled
            else f"after averaging repeats; figures and claims C1–C6 use the paper variant at the "
            f"most frequent workload: {data.reference_samples} samples, batch "
            f"{data.reference_batch_size}, {data.reference_epochs} epoch(s) "
            f"({len(data.reference)} configuration-phases)."
        ),
    ]
    if data.dropped_estimates:
        lines.append(
            f"- **Left out**: {data.dropped_estimates} rows with estimated energy "
            "(measured rows exist; an estimate is never judged as a measurement)."
        )
    if data.estimated:
        lines += [
            "",
            "> **Energy here is estimated, not measured** "
            f"({', '.join(f'`{src}`' for src in sorted(data.sources))}; device "
            f"{', '.join(data.devices) or 'unknown'}). An estimate is a fixed power times a time "
            "(`estimate-cpu-time`: the process's CPU seconds × a per-core power; CodeCarbon's "
            "fallback: TDP × load × wall time), so it follows time, not the power the device "
            "drew. So the claims "
            "on average power (C4) and on utilisation (C5, C6) cannot be judged and read "
            '"not testable here"; C1–C3 and Q1 describe duration scaled by a constant, not energy.',
        ]
    return lines


def claims_table(claims: Sequence[ClaimResult]) -> list[str]:
    lines = [
        "| claim | statement | statistic | number | verdict | why |",
        "|---|---|---|---|---|---|",
    ]
    for c in claims:
        verdict = f"**{c.verdict}**" if c.verdict != UNTESTABLE else f"_{c.verdict}_"
        lines.append(
            f"| {c.claim} | {_cell(c.statement)} | {_cell(c.statistic)} | {_value(c.value)} "
            f"| {verdict} | {_cell(c.reason)} |"
        )
    return lines


def cv_summary(cv: pd.DataFrame) -> list[str]:
    ape = (cv["predicted_j"] - cv["measured_j"]).abs() / cv["measured_j"]
    frame = cv.assign(ape=ape)
    keys = [k for k in ("predictor", "family", "phase") if k in frame]
    table = frame.groupby(keys)["ape"].agg(["count", "mean", "median"]).reset_index()
    head = "| " + " | ".join(keys) + " | n | MAPE | median APE |"
    lines = [head, "|" + "---|" * (len(keys) + 3)]
    for row in table.itertuples(index=False):
        vals = [str(getattr(row, k)) for k in keys]
        lines.append(
            "| " + " | ".join(vals) + f" | {row.count} | {fmt(100 * row.mean, 1)} % "
            f"| {fmt(100 * row.median, 1)} % |"
        )
    return lines


def write(
    path: str,
    data: ReportData,
    claims: Sequence[ClaimResult],
    figures: Sequence[FigureFile],
    csv_files: Sequence[str],
    cv: pd.DataFrame | None,
) -> None:
    lines = header(data)
    lines += ["", "## Claims of the paper (docs/PAPER.md, C1–C6) and two open questions", ""]
    lines += claims_table(claims)
    lines += ["", "Details per claim (the numbers behind each verdict):", ""]
    lines += [f"- **{c.claim}**: {_cell(c.details) or '—'}" for c in claims]
    lines += ["", "### How the verdicts are decided", "", THRESHOLDS.rstrip(), ""]
    resolved = meter.summarize(data)
    if beside_paper.applies(data):
        lines += beside_paper.markdown(data, claims, resolved)
    if resolved is not None:
        lines += meter.markdown(resolved)
    lines += ["", "## Figures", ""]
    for fig in figures:
        lines.append(f"### {fig.title}")
        lines.append("")
        if fig.path is None:
            lines.append(f"_Skipped: {fig.note}._")
        else:
            lines.append(f"![{fig.title}]({fig.path.name})")
            if fig.note:
                lines += ["", f"_Note: {fig.note}_"]
        lines.append("")
    if cv is not None and not cv.empty:
        lines += ["## Cross-validation of the current predictor", ""]
        lines += cv_summary(cv)
        lines.append("")
    lines += ["## Numbers as CSV", ""]
    lines += [f"- [`{name}`]({name})" for name in csv_files]
    lines.append("")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
