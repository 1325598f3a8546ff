"""What reading DeepSpeech2's rows in their real precision does to the transfer model.

    PYTHONPATH=. python examples/zeus/precision.py --db runs/quadro-rtx6000.db \
        --out artifacts/report-transfer/PRECISION.md

DeepSpeech2's Zeus rows trained in FP16 mixed precision (their ``precision`` is ``amp-fp16``).
The same rows are cross-validated twice, leave one GPU out and leave one workload out, as
``joulecast fit-transfer`` does (Sentiment140 left out; the EC-NAS store joins with ``--db``):
once read as FP32 (every row's ``amp`` set to 0, what the model published before read) and once
as they are (what it reads now: mixed-precision matrix work against the FP16 peak at a share of
its own, ``eff_amp``, never slower than FP32). Nested bands are not sized (``inner=False``): the
figures compared are the median APE, MAPE and Spearman of energy per epoch, which the bands do
not change. Also printed: the matrix efficiencies of a fit on every row, and DeepSpeech2's best
achieved FLOP/s per GPU against the peak each reading prices it at.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

import estimator.transfer.evaluate as evaluate
import estimator.transfer.fit as fit
from estimator.transfer.cli import _lookup
from estimator.transfer.data import from_stores

REPO = Path(__file__).resolve().parents[2]
ZEUS = REPO / "artifacts" / "measurements" / "zeus-nsdi23.db"
SENTIMENT = "zeus/sentiment140/bert_base_uncased/adamw"
READINGS = {"as FP32 (before)": 0.0, "as recorded (DeepSpeech2 amp-fp16, published)": None}
COLUMNS = ["transfer_median_ape", "transfer_mape", "transfer_spearman"]


def _frame(dbs: list[Path]) -> pd.DataFrame:
    frame = from_stores([ZEUS, *dbs], _lookup, phases=("train",)).frame
    return frame[frame["workload"] != SENTIMENT].reset_index(drop=True)


def _achieved(frame: pd.DataFrame) -> pd.DataFrame:
    """DeepSpeech2's best FLOP/s per GPU (training: 3 passes of the forward FLOPs a sample)."""
    ds2 = frame[frame["workload"].str.contains("deepspeech2")]
    flops = ds2[["flops_conv", "flops_dense", "flops_recurrent", "flops_other"]].sum(axis=1)
    rate = 3.0 * flops * ds2["samples"] / ds2["duration_s"]
    out = pd.DataFrame({"hardware": ds2["hardware"], "rate": rate})
    out["fp32_peak"] = ds2["fp32_flops"]
    out["amp_peak"] = ds2["amp_flops"]
    return out.groupby("hardware").max()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1].strip())
    parser.add_argument("--db", action="append", default=[], type=Path, help="more stores")
    parser.add_argument("--out", type=Path, help="write the report here (Markdown)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    base = _frame(args.db)
    lines = [
        "# DeepSpeech2 read as FP32 or as the FP16 mixed precision it trained in",
        "",
        f"`PYTHONPATH=. python examples/zeus/precision.py {' '.join(f'--db {d}' for d in args.db)}`"
        f" on {len(base)} training rows of {base['hardware'].nunique()} GPUs and "
        f"{base['workload'].nunique()} workloads (Sentiment140 left out). Median APE, MAPE "
        "and Spearman of energy per epoch; no timing is involved, so the machine's load does "
        "not move them.",
        "",
    ]
    tables = {}
    for label, amp in READINGS.items():
        frame = base.copy()
        if amp is not None:
            frame["amp"] = amp
        start = time.monotonic()
        parts = []
        for scheme in ("logo", "lowo"):
            table = evaluate.scores(evaluate.cross_validate(frame, scheme, inner=False))
            parts.append(table.assign(scheme=scheme))
        tables[label] = pd.concat(parts, ignore_index=True)
        params = fit.fit_params(frame)
        names = ("eff_conv", "eff_dense", "eff_recurrent", "eff_amp")
        eff = ", ".join(f"{k} {params[k]:.3g}" for k in names if k in params)
        lines.append(f"- {label}: fit on every row: {eff} ({time.monotonic() - start:.0f} s)")
        print(label, "done")
    lines += ["", "| held out | rows | " + " | ".join(READINGS) + " |", "|---|---|---|---|"]
    first, second = (tables[k] for k in READINGS)
    for (_, a), (_, b) in zip(first.iterrows(), second.iterrows(), strict=True):
        cells = [
            f"{x['transfer_median_ape']:.1%} (MAPE {x['transfer_mape']:.1%}, "
            f"ρ {x['transfer_spearman']:.3f})"
            for x in (a, b)
        ]
        lines.append(f"| {a['scheme']}: {a['group']} | {a['n']} | {cells[0]} | {cells[1]} |")
    best = _achieved(base)
    lines += [
        "",
        "DeepSpeech2's best epoch per GPU, at the assumed work per utterance:",
        "",
        "| GPU | achieved TFLOP/s | FP32 peak | FP16 peak (mixed precision) |",
        "|---|---|---|---|",
    ]
    for hw, row in best.iterrows():
        lines.append(
            f"| {hw} | {row['rate'] / 1e12:.1f} | {row['fp32_peak'] / 1e12:.1f} | "
            f"{row['amp_peak'] / 1e12:.1f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
