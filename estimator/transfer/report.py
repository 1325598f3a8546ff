"""REPORT.md of the transfer model: what it rests on, how it scores on data it never saw, and
its exam on a GPU that no fold ever held (zero-shot).

Numbers only from the cross-validation frames and the exam rows; nothing is typed in by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from estimator.transfer.artifact import TransferModel
from estimator.transfer.evaluate import BASELINES, CrossValidation, source_scores
from estimator.transfer.fit import log_errors

SCHEME_TITLES = {
    "logo": "Leave one GPU out (answers for a GPU from its spec sheet alone)",
    "lowo": "Leave one workload out (answers for a network nobody measured)",
}


def _pct(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{100 * value:.1f} %"


def scores_table(table: pd.DataFrame, scheme: str) -> list[str]:
    part = table[table["scheme"] == scheme]
    names = ("transfer", *BASELINES)
    head = "| held out | rows | " + " | ".join(f"{n} median APE" for n in names)
    head += " | transfer MAPE | transfer Spearman | 90 % coverage | interval (high/low) |"
    lines = [head, "|" + "---|" * (len(names) + 6)]
    for row in part.to_dict(orient="records"):
        cells = [str(row["group"]), str(row["n"])]
        cells += [_pct(row[f"{n}_median_ape"]) for n in names]
        cells += [
            _pct(row["transfer_mape"]),
            f"{row['transfer_spearman']:.3f}",
            _pct(row["coverage90"]),
            f"×{row['width']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def sources_section(cv: CrossValidation) -> list[str]:
    """The held-out groups measured by more than one source, scored per source (empty when
    every group has one): the report's lines under its leave-one-GPU-out table."""
    table = source_scores(cv)
    if table.empty:
        return []
    return [
        "Held-out GPUs whose rows come from more than one source, scored per source: one "
        "source's many rows of one workload otherwise set the GPU's median alone.",
        "",
        *scores_table(table, cv.scheme),
    ]


def exam_frame(model: TransferModel, rows: pd.DataFrame) -> pd.DataFrame:
    """Every exam row with the model's zero-shot answer, the interval it would be served with
    (a GPU it never saw, a network it never saw) and its log errors."""
    from estimator.transfer.answer import band

    errors = log_errors(model.params, rows)
    low, high = band(model, gpu_measured=False)
    out = rows[["hardware", "config_id", "phase", "batch_size", "samples"]].copy()
    out["family"] = rows["config_id"].str.split("-").str[0]
    out["measured_j"] = rows["energy_j"]
    out["transfer_j"] = errors["energy_j"]
    out["low_j"] = errors["energy_j"] * np.exp(-high)
    out["high_j"] = errors["energy_j"] * np.exp(-low)
    for part in ("energy", "duration", "power"):
        out[f"log_error_{part}"] = errors[f"log_error_{part}"]
    return out


def exam_table(exam: pd.DataFrame) -> list[str]:
    lines = [
        "| hardware | phase | family | rows | median APE | in the 90 % interval | median "
        "predicted/measured: energy | duration | power |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def inside(part: pd.DataFrame) -> float:
        hit = (part["low_j"] <= part["measured_j"]) & (part["measured_j"] <= part["high_j"])
        return float(hit.mean())

    for (hw, phase, fam), part in exam.groupby(["hardware", "phase", "family"]):
        ape = (part["transfer_j"] / part["measured_j"] - 1).abs().median()
        ratios = [np.exp(part[f"log_error_{p}"].median()) for p in ("energy", "duration", "power")]
        lines.append(
            f"| {hw} | {phase} | {fam} | {len(part)} | {_pct(ape)} | {_pct(inside(part))} | "
            + " | ".join(f"×{r:.2f}" for r in ratios)
            + " |"
        )
    for (hw, phase), part in exam.groupby(["hardware", "phase"]):
        ape = (part["transfer_j"] / part["measured_j"] - 1).abs().median()
        lines.append(
            f"| {hw} | {phase} | all | {len(part)} | **{_pct(ape)}** | {_pct(inside(part))} | | | |"
        )
    return lines


def write(
    out_dir: str | Path,
    model: TransferModel,
    cv: Mapping[str, CrossValidation],
    table: pd.DataFrame,
    exam: pd.DataFrame | None = None,
    notes: tuple[str, ...] = (),
) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for scheme, result in cv.items():
        result.predictions.to_csv(out / f"cv_{scheme}.csv", index=False)
    table.to_csv(out / "scores.csv", index=False)
    fitted = model.fitted_on
    lines = [
        f"# The GPU transfer model — version {model.version}",
        "",
        "Energy of a training epoch = average power × duration, from the graph's FLOPs and bytes "
        "against a GPU's catalogued peak rates, bandwidth and power limit "
        "(`estimator/transfer/model.py` gives the equations). One set of parameters for every "
        "GPU: a GPU enters only through its spec sheet.",
        "",
        f"- **Fitted on** {fitted.get('rows')} measured training rows of "
        f"{len(fitted.get('gpus', []))} GPUs ({', '.join(fitted.get('gpus', []))}) and "
        f"{len(fitted.get('workloads', []))} workloads; energy sources "
        + ", ".join(f"`{k}` ({v})" for k, v in sorted(fitted.get("energy_sources", {}).items()))
        + ".",
    ]
    if fitted.get("excluded_workloads"):
        lines.append(f"- **Left out**: {', '.join(fitted['excluded_workloads'])}.")
    lines += [f"- {note}" for note in notes]
    lines += [
        "",
        "Baselines on the same folds: `joules-per-flop` (the GPU's median J per training FLOP; "
        "an unmeasured GPU takes the median of the others), `tdp-over-peak` (TDP × FLOPs / FP32 "
        "peak, one efficiency fitted). Intervals: each fold's 90 % band comes from an inner "
        "leave-one-group-out run on its training groups only, so coverage is a real test.",
        "",
    ]
    for scheme, result in cv.items():
        lines += [f"## {SCHEME_TITLES.get(scheme, scheme)}", ""]
        lines += scores_table(table, scheme)
        lines.append("")
        if scheme == "logo" and (split := sources_section(result)):
            lines += [*split, ""]
    lines += ["## Parameters", ""]
    lines += [f"- `{k}` = {v:.4g}" for k, v in model.params.items()]
    lines.append("")
    bands = ", ".join(
        f"{k}: ×{np.exp(-hi):.2f}..×{np.exp(-lo):.2f}" for k, (lo, hi) in model.bands.items()
    )
    lines += [f"Served interval bands (measured / predicted): {bands}.", ""]
    if exam is not None and not exam.empty:
        exam.to_csv(out / "exam.csv", index=False)
        lines += [
            "## Exam: a GPU no fold ever held, zero-shot",
            "",
            "The model as published (fitted without these rows) asked for every measured "
            "configuration-phase of the exam store; the test phase is the same model run "
            "forward-only (it is not served: no test-phase row informs it).",
            "",
        ]
        lines += exam_table(exam)
        lines.append("")
    path = out / "REPORT.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
