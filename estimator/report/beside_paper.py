"""The paper's Tesla T4 findings beside this store's verdicts, for a GPU measured with a meter.

The paper states its findings in words (docs/PAPER.md); each one held on its T4. Set beside
them, a verdict on another GPU says what carries over, and the setup lines say what differed in
the measurement itself (board, meter, polling, window lengths), which is often why a finding
does not carry over.
"""

from __future__ import annotations

from collections.abc import Sequence

from estimator.report.claims import ClaimResult
from estimator.report.data import ReportData
from estimator.report.meter import MeterSummary
from estimator.report.stats import fmt

PAPER_T4 = {
    "C1": "energy rises with FLOPs for every architecture, train and test",
    "C2": "test energy near-affine in FLOPs per family; in params for MLP/RNN only",
    "C3": "training: MLP/RNN rise steeply with FLOPs, CNN smoothly, CRNN between",
    "C4": "MLP/RNN power sets of train and test do not overlap; CNN/CRNN draw similar power",
    "C5": "GPU utilisation correlates strongly with energy, whatever phase or architecture",
    "C6": "memory utilisation correlates less, and more by architecture",
}
"""The paper's findings on its Tesla T4, as it states them (section 4)."""

PAPER_SETUP = (
    "NVIDIA Tesla T4 (70 W board power, 16 GB); GPU energy from CodeCarbon; GPU and memory "
    "utilisation polled from nvidia-smi every 5 s; one epoch of 1578 clips at batch 8"
)


def applies(data: ReportData) -> bool:
    """Only measured GPU energy is set beside the paper's measured GPU energy."""
    return not data.estimated and any(d.startswith("cuda") for d in data.devices)


def markdown(
    data: ReportData, claims: Sequence[ClaimResult], meter: MeterSummary | None
) -> list[str]:
    here = ", ".join(data.device_names) or data.hardware
    sources = ", ".join(f"`{s}`" for s in sorted(data.sources))
    windows = ""
    if meter is not None:
        windows = "; windows " + ", ".join(
            f"{phase} {low:.2f}–{high:.1f} s (median {mid:.2f} s)"
            for phase, (low, mid, high) in meter.duration_s.items()
        )
    lines = [
        "## Beside the paper's Tesla T4",
        "",
        f"- **Paper**: {PAPER_SETUP}.",
        f"- **Here**: {here}; energy {sources}, power and utilisation sampled every 0.1 s"
        f"{windows}.",
        "",
        "| claim | on the paper's T4 | here | number | why |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        if c.claim not in PAPER_T4:
            continue
        number = fmt(c.value, 3) if c.value == c.value else "n/a"
        reason = c.reason.split(" [judged", 1)[0].replace("|", "\\|")
        lines.append(
            f"| {c.claim} | held: {PAPER_T4[c.claim]} | **{c.verdict}** | {number} | {reason} |"
        )
    lines.append("")
    return lines
