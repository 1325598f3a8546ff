"""Claims C1-C6 of the paper (docs/PAPER.md), and the two questions it leaves open, tested with numbers.

Each test returns a :class:`ClaimResult` (one row of the claims table) and detail rows (one per
family and phase statistic). Thresholds are module constants, justified in :data:`THRESHOLDS`.
Claims on average power (C4) and on utilisation (C5, C6) are "not testable here" on estimated
energy: an estimate (a fixed power × CPU or wall time) follows time, not the power drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from estimator.report.data import ReportData, rescaled_reference
from estimator.report.noise import (
    INCONCLUSIVE,
    ReplicateNoise,
    drop_inverted,
    replicate_noise,
)
from estimator.report.stats import (
    AffineFit,
    affine,
    affine_log,
    fmt,
    pearson,
    separation_auc,
    spearman,
)
from joulecast.measurement import PHASES

HOLDS = "holds"
FAILS = "does not hold"
UNTESTABLE = "not testable here"

MIN_CONFIGS = 4  # configurations per family (and phase) below which a statistic is not computed
RISE_P = 0.05  # C1: one-sided Spearman p-value for "rises"
AFFINE_R2 = 0.9  # C2, C3: "near-affine" = an affine fit explains >= 90 % of the log-space variance
STEEP_RATIO = 2.0  # C3: MLP/RNN slope (J per FLOP) at least twice the CNN's = "two trends"
SIMILAR_POWER_RATIO = 1.25  # C4: CNN/CRNN median train/test power within a factor 1.25
STRONG_RHO = 0.7  # C5: "strong" correlation
LINEAR_R2 = 0.98  # Q1: energy affine in dataset size
MIN_POWER_RUNS = 3  # C4: configurations per phase needed to compare power sets

GROUP_DENSE = ("mlp", "rnn")
GROUP_CONV = ("cnn", "crnn")

THRESHOLDS = f"""\
- **C1, "rises"**: Spearman ρ of energy vs FLOPs per family and phase, positive with a one-sided
  p < {RISE_P}. A rank correlation asks only for a monotone rise (not a straight line), and the
  p-value keeps a family of {MIN_CONFIGS}–12 configurations from passing by chance. The number shown
  is the smallest ρ.
- **C2, C3, "near-affine"**: R² ≥ {AFFINE_R2} of an affine fit (energy = a·x + b) within a family;
  below it the fit leaves more than a tenth of the variance unexplained, which is what "scattered"
  means here. Families with fewer than {MIN_CONFIGS} configurations are not judged.
- **C3, "two trends"**: the slope of training energy vs total FLOPs (J per TFLOP) of MLP and of RNN
  is at least {STEEP_RATIO:g}× the CNN's (a factor that a plot shows as a different trend, not noise),
  the CNN's fit is near-affine (smooth), and the CRNN's slope lies between the CNN's and the
  steepest of MLP/RNN.
- **C4, power sets**: per family, the probability that a training run draws more average power
  than a test run (Mann–Whitney AUC). "Do not overlap" is AUC = 1 (every training run above
  every test run), exactly the paper's wording; "similar" is overlapping sets (AUC < 1) with a
  median train/test power ratio within ×{SIMILAR_POWER_RATIO:g}.
- **C5, "strong"**: Spearman ρ ≥ {STRONG_RHO} between energy and mean GPU utilisation, pooled,
  within each phase and within each family (the usual bound for a strong correlation; ranks because
  energy spans decades). Pearson r is shown beside it.
- **C6**: memory utilisation's pooled ρ is below GPU utilisation's, and the spread (max − min)
  of its per-family ρ is wider than GPU utilisation's ("depends more on the architecture").
- **Q1, linear in dataset size**: per configuration and phase with at least three sample counts,
  R² ≥ {LINEAR_R2} of an affine fit of energy vs samples (an epoch is a sum of equal batches, so
  anything less is a real departure); the intercept share is the intercept over the energy at the
  largest count (fixed costs: start-up, first-batch allocation).
- **Q2, frames RNN**: for three statistics that separate MLP/RNN from CNN/CRNN (training J per
  TFLOP on a log scale, test R² of energy vs params, train/test power AUC), is the 64-frame RNN
  nearer to the MLP/RNN mean or to the CNN/CRNN mean? The split survives when it sides with
  MLP/RNN on most of them.
"""


@dataclass(frozen=True)
class ClaimResult:
    """One row of the claims table. ``value`` is the headline number (NaN when none)."""

    claim: str
    statement: str
    statistic: str
    value: float
    details: str
    verdict: str
    reason: str


@dataclass(frozen=True)
class Detail:
    """One statistic behind a claim, for one family and phase (``all`` when pooled)."""

    claim: str
    family: str
    phase: str
    statistic: str
    value: float
    n: int


STATEMENTS = {
    "C1": "Energy rises with FLOPs for every architecture, in both phases.",
    "C2": "At test, energy vs FLOPs is near-affine within a family; energy vs params is near-affine "
    "for MLP/RNN and scattered for CNN/CRNN.",
    "C3": "At training, two trends: MLP/RNN rise steeply with FLOPs, CNN rises smoothly over the "
    "whole range, CRNN lies between.",
    "C4": "MLP/RNN draw much more average power in training than in test (no overlap); CNN/CRNN "
    "draw similar power in both.",
    "C5": "GPU utilisation correlates strongly with energy, whatever the phase or architecture.",
    "C6": "Memory utilisation correlates less, and depends more on the architecture.",
    "Q1": "Open question: is energy linear in dataset size?",
    "Q2": "Does the MLP/RNN vs CNN/CRNN split survive a real recurrence (RNN over 64 frames)?",
}

_ESTIMATE_REASON = (
    "energy is an estimate (a fixed power × CPU or wall time), which follows time, not the "
    "power drawn"
)


def evaluate(data: ReportData) -> tuple[list[ClaimResult], list[Detail]]:
    """Test every claim and question on ``data``; returns the table rows and their details.

    Configurations whose test cost more than training per sample are discarded first (and
    counted); every verdict's reason ends with the replicate noise it was judged against.
    """
    noise = replicate_noise(data.runs)
    data, dropped = drop_inverted(data)
    suffix = f" [{noise.describe()}"
    if dropped:
        suffix += f"; {dropped} configuration(s) discarded: test cost more than training"
    suffix += "]"
    results: list[ClaimResult] = []
    details: list[Detail] = []
    for test in (c1, c2, c3, c4, c5, c6, q1, q2):
        result, more = test(data) if test is not q1 else q1(data, noise)
        results.append(replace(result, reason=result.reason + suffix))
        details.extend(more)
    return results, details


def _families(frame: pd.DataFrame, phase: str, wanted: tuple[str, ...] | None = None) -> list[str]:
    """Families with at least MIN_CONFIGS configurations in ``phase``, in the paper's order."""
    order = ("mlp", "rnn", "cnn", "crnn")
    present = frame[frame["phase"] == phase].groupby("family").size()
    names = [f for f in order if present.get(f, 0) >= MIN_CONFIGS]
    names += sorted(f for f in present.index if f not in order and present[f] >= MIN_CONFIGS)
    return [f for f in names if wanted is None or f in wanted]


def _sub(frame: pd.DataFrame, family: str | None, phase: str | None) -> pd.DataFrame:
    keep = np.ones(len(frame), dtype=bool)
    if family is not None:
        keep &= (frame["family"] == family).to_numpy()
    if phase is not None:
        keep &= (frame["phase"] == phase).to_numpy()
    return frame[keep]


def _estimate_note(data: ReportData) -> str:
    return f" Caveat: {_ESTIMATE_REASON}; this judges duration." if data.estimated else ""


def _untestable(claim: str, statistic: str, reason: str) -> tuple[ClaimResult, list[Detail]]:
    return ClaimResult(claim, STATEMENTS[claim], statistic, math.nan, "", UNTESTABLE, reason), []


def c1(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = "Spearman ρ(energy, FLOPs) per family and phase; min shown"
    ref = data.reference
    details: list[Detail] = []
    parts: list[str] = []
    failing: list[str] = []
    for phase in ("test", "train"):
        for fam in _families(ref, phase):
            sub = _sub(ref, fam, phase)
            corr = spearman(sub["flops_phase"], sub["energy_j"])
            details.append(Detail("C1", fam, phase, "spearman_rho", corr.rho, corr.n))
            details.append(Detail("C1", fam, phase, "p_greater", corr.p_greater, corr.n))
            parts.append(f"{fam}/{phase} ρ={fmt(corr.rho)}")
            if not (corr.rho > 0 and corr.p_greater < RISE_P):
                failing.append(f"{fam}/{phase} (ρ={fmt(corr.rho)}, p={fmt(corr.p_greater, 3)})")
    if not details:
        return _untestable("C1", stat, f"no family has {MIN_CONFIGS} configurations in a phase")
    value = min(d.value for d in details if d.statistic == "spearman_rho")
    value = value if math.isfinite(value) else math.nan
    if failing:
        verdict, reason = FAILS, "no significant rise for " + ", ".join(failing)
    else:
        verdict, reason = HOLDS, f"every family rises (p < {RISE_P}) in both phases"
    reason += _missing_note(ref) + _estimate_note(data)
    return ClaimResult(
        "C1", STATEMENTS["C1"], stat, value, "; ".join(parts), verdict, reason
    ), details


def _missing_note(ref: pd.DataFrame) -> str:
    missing = [
        f
        for f in ("mlp", "rnn", "cnn", "crnn")
        if f not in _families(ref, "test") + _families(ref, "train")
    ]
    return (
        f" Not judged (fewer than {MIN_CONFIGS} configurations): {', '.join(missing)}."
        if missing
        else ""
    )


def _log_fits(
    ref: pd.DataFrame, phase: str, flops_unit: float = 1.0
) -> dict[str, tuple[AffineFit, AffineFit]]:
    """Per family measured at ``phase``: the affine fits (relative error, R² in log space) of
    energy vs FLOPs (in units of ``flops_unit`` FLOPs) and of energy vs params."""
    fits = {}
    for fam in _families(ref, phase):
        sub = _sub(ref, fam, phase)
        by_flops = affine_log(sub["flops_total"] / flops_unit, sub["energy_j"])
        fits[fam] = (by_flops, affine_log(sub["params"], sub["energy_j"]))
    return fits


def c2(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = (
        "R² in log space of affine fits (relative error) at test, per family: vs FLOPs "
        "(min shown) and vs params"
    )
    ref = data.reference
    fams = _families(ref, "test")
    dense = [f for f in fams if f in GROUP_DENSE]
    conv = [f for f in fams if f in GROUP_CONV]
    if not dense or not conv:
        return _untestable("C2", stat, "needs test rows of MLP or RNN and of CNN or CRNN")
    details: list[Detail] = []
    r2_flops: dict[str, float] = {}
    r2_params: dict[str, float] = {}
    for fam, (fit_f, fit_p) in _log_fits(ref, "test").items():
        r2_flops[fam], r2_params[fam] = fit_f.r2, fit_p.r2
        details.append(Detail("C2", fam, "test", "r2_vs_flops", fit_f.r2, fit_f.n))
        details.append(Detail("C2", fam, "test", "r2_vs_params", fit_p.r2, fit_p.n))
    problems = [f"{f} vs FLOPs R²={fmt(r)}" for f, r in r2_flops.items() if not r >= AFFINE_R2]
    problems += [
        f"{f} vs params R²={fmt(r2_params[f])} (not affine)"
        for f in dense
        if not r2_params[f] >= AFFINE_R2
    ]
    problems += [
        f"{f} vs params R²={fmt(r2_params[f])} (not scattered)"
        for f in conv
        if r2_params[f] >= AFFINE_R2
    ]
    text = "; ".join(f"{f}: FLOPs {fmt(r2_flops[f])}, params {fmt(r2_params[f])}" for f in fams)
    if problems:
        verdict, reason = FAILS, "; ".join(problems)
    else:
        verdict, reason = (
            HOLDS,
            f"FLOPs fits R² ≥ {AFFINE_R2} for all; params affine for MLP/RNN only",
        )
    value = min(r2_flops.values())
    reason += _estimate_note(data)
    return ClaimResult("C2", STATEMENTS["C2"], stat, value, text, verdict, reason), details


def c3(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = (
        "training slope J/TFLOP per family (affine fit for relative error, R² in log space); "
        "min(MLP,RNN) / CNN shown"
    )
    ref = data.reference
    fams = _families(ref, "train")
    dense = [f for f in fams if f in GROUP_DENSE]
    if not dense or "cnn" not in fams:
        return _untestable("C3", stat, "needs training rows of MLP or RNN and of CNN")
    details: list[Detail] = []
    slope: dict[str, float] = {}
    r2: dict[str, float] = {}
    for fam, (fit, params_fit) in _log_fits(ref, "train", flops_unit=1e12).items():
        slope[fam], r2[fam] = fit.slope, fit.r2
        details.append(Detail("C3", fam, "train", "slope_j_per_tflop", fit.slope, fit.n))
        details.append(Detail("C3", fam, "train", "r2_vs_flops", fit.r2, fit.n))
        details.append(Detail("C3", fam, "train", "r2_vs_params", params_fit.r2, params_fit.n))
    ratio = min(slope[f] for f in dense) / slope["cnn"] if slope["cnn"] > 0 else math.nan
    problems: list[str] = []
    if not ratio >= STEEP_RATIO:
        problems.append(f"MLP/RNN slope only {fmt(ratio)}× the CNN's")
    if not r2["cnn"] >= AFFINE_R2:
        problems.append(f"CNN not smooth (R²={fmt(r2['cnn'])})")
    if "crnn" in slope:
        top = max(slope[f] for f in dense)
        if not slope["cnn"] < slope["crnn"] < top:
            problems.append(
                f"CRNN slope {fmt(slope['crnn'], 3)} J/TFLOP not between CNN and MLP/RNN"
            )
    text = "; ".join(f"{f}: {fmt(slope[f], 3)} J/TFLOP (R² {fmt(r2[f])})" for f in fams)
    if problems:
        verdict, reason = FAILS, "; ".join(problems)
    else:
        verdict = HOLDS
        reason = f"MLP/RNN ≥ {STEEP_RATIO:g}× steeper than a smooth CNN"
        reason += ", CRNN between" if "crnn" in slope else "; CRNN not measured"
    reason += _estimate_note(data)
    return ClaimResult("C3", STATEMENTS["C3"], stat, ratio, text, verdict, reason), details


def c4(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = "train>test power AUC per family (1 = no overlap); min over MLP/RNN shown"
    if data.estimated:
        return _untestable("C4", stat, _ESTIMATE_REASON + ": average power is not observed")
    ref = data.reference
    details: list[Detail] = []
    auc: dict[str, float] = {}
    ratio: dict[str, float] = {}
    for fam in ("mlp", "rnn", "cnn", "crnn"):
        train = _sub(ref, fam, "train")["power_avg_w"].dropna()
        test = _sub(ref, fam, "test")["power_avg_w"].dropna()
        if len(train) < MIN_POWER_RUNS or len(test) < MIN_POWER_RUNS:
            continue
        auc[fam] = separation_auc(train, test)
        ratio[fam] = float(train.median() / test.median())
        n = len(train) + len(test)
        details.append(Detail("C4", fam, "train-vs-test", "power_auc", auc[fam], n))
        details.append(Detail("C4", fam, "train-vs-test", "median_power_ratio", ratio[fam], n))
    dense = [f for f in GROUP_DENSE if f in auc]
    conv = [f for f in GROUP_CONV if f in auc]
    if not dense or not conv:
        return _untestable("C4", stat, "needs both phases of MLP or RNN and of CNN or CRNN")
    problems = [f"{f} sets overlap (AUC={fmt(auc[f])})" for f in dense if auc[f] < 1.0]
    for f in conv:
        if auc[f] >= 1.0:
            problems.append(f"{f} sets do not overlap (AUC=1)")
        elif not 1 / SIMILAR_POWER_RATIO <= ratio[f] <= SIMILAR_POWER_RATIO:
            problems.append(f"{f} median train/test power ratio {fmt(ratio[f])}")
    text = "; ".join(f"{f}: AUC {fmt(auc[f])}, ratio {fmt(ratio[f])}" for f in (*dense, *conv))
    if problems:
        verdict, reason = FAILS, "; ".join(problems)
    else:
        verdict, reason = HOLDS, "MLP/RNN train and test power sets are disjoint; CNN/CRNN overlap"
    value = min(auc[f] for f in dense)
    return ClaimResult("C4", STATEMENTS["C4"], stat, value, text, verdict, reason), details


def _util_frame(data: ReportData, column: str) -> pd.DataFrame:
    ref = data.reference
    return ref[ref[column].notna()]


def _util_correlations(
    claim: str, frame: pd.DataFrame, column: str
) -> tuple[float, dict[str, float], dict[str, float], list[Detail]]:
    """Pooled rho, per-phase rho, per-family rho (phases pooled) of energy with ``column``."""
    details: list[Detail] = []
    pooled = spearman(frame[column], frame["energy_j"])
    details.append(Detail(claim, "all", "all", f"spearman_rho_{column}", pooled.rho, pooled.n))
    details.append(
        Detail(
            claim,
            "all",
            "all",
            f"pearson_r_{column}",
            pearson(frame[column], frame["energy_j"]),
            pooled.n,
        )
    )
    per_phase: dict[str, float] = {}
    for phase in PHASES:
        sub = _sub(frame, None, phase)
        if len(sub) >= MIN_CONFIGS:
            corr = spearman(sub[column], sub["energy_j"])
            per_phase[phase] = corr.rho
            details.append(Detail(claim, "all", phase, f"spearman_rho_{column}", corr.rho, corr.n))
            details.append(
                Detail(
                    claim,
                    "all",
                    phase,
                    f"pearson_r_{column}",
                    pearson(sub[column], sub["energy_j"]),
                    corr.n,
                )
            )
    per_family: dict[str, float] = {}
    for fam in ("mlp", "rnn", "cnn", "crnn"):
        sub = _sub(frame, fam, None)
        if len(sub) >= MIN_CONFIGS:
            corr = spearman(sub[column], sub["energy_j"])
            per_family[fam] = corr.rho
            details.append(Detail(claim, fam, "all", f"spearman_rho_{column}", corr.rho, corr.n))
    return pooled.rho, per_phase, per_family, details


def _no_util_reason(data: ReportData, what: str) -> str:
    devices = ", ".join(data.devices) or "unknown"
    return f"no {what} recorded for these rows (device: {devices}); NVML reports it on NVIDIA GPUs only"


def c5(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = "Spearman ρ(energy, GPU util): pooled (shown), per phase, per family"
    if data.estimated:
        return _untestable("C5", stat, _ESTIMATE_REASON)
    frame = _util_frame(data, "gpu_util_mean")
    if len(frame) < MIN_CONFIGS:
        return _untestable("C5", stat, _no_util_reason(data, "GPU utilisation"))
    pooled, per_phase, per_family, details = _util_correlations("C5", frame, "gpu_util_mean")
    checks = {"pooled": pooled, **per_phase, **per_family}
    weak = [f"{k} ρ={fmt(v)}" for k, v in checks.items() if not v >= STRONG_RHO]
    text = "; ".join(f"{k} ρ={fmt(v)}" for k, v in checks.items())
    if weak:
        verdict, reason = FAILS, f"below {STRONG_RHO}: " + ", ".join(weak)
    else:
        verdict, reason = HOLDS, f"ρ ≥ {STRONG_RHO} pooled, in each phase and each family"
    return ClaimResult("C5", STATEMENTS["C5"], stat, pooled, text, verdict, reason), details


def c6(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = "Spearman ρ(energy, memory util) pooled (shown) vs GPU util; spread of per-family ρ"
    if data.estimated:
        return _untestable("C6", stat, _ESTIMATE_REASON)
    mem = _util_frame(data, "mem_util_mean")
    gpu = _util_frame(data, "gpu_util_mean")
    if len(mem) < MIN_CONFIGS or len(gpu) < MIN_CONFIGS:
        return _untestable("C6", stat, _no_util_reason(data, "GPU and memory utilisation"))
    mem_pooled, _, mem_fam, details = _util_correlations("C6", mem, "mem_util_mean")
    gpu_pooled, _, gpu_fam, _ = _util_correlations("C6", gpu, "gpu_util_mean")
    if len(mem_fam) < 2 or len(gpu_fam) < 2:
        return _untestable("C6", stat, f"needs two families with {MIN_CONFIGS} configurations")
    mem_spread = max(mem_fam.values()) - min(mem_fam.values())
    gpu_spread = max(gpu_fam.values()) - min(gpu_fam.values())
    details.append(Detail("C6", "all", "all", "family_rho_spread_mem", mem_spread, len(mem_fam)))
    details.append(Detail("C6", "all", "all", "family_rho_spread_gpu", gpu_spread, len(gpu_fam)))
    text = (
        f"pooled ρ mem {fmt(mem_pooled)} vs GPU {fmt(gpu_pooled)}; "
        f"per-family spread mem {fmt(mem_spread)} vs GPU {fmt(gpu_spread)}"
    )
    problems = []
    if not mem_pooled < gpu_pooled:
        problems.append("memory utilisation correlates at least as well as GPU utilisation")
    if not mem_spread > gpu_spread:
        problems.append("its per-family correlation varies no more than GPU utilisation's")
    if problems:
        verdict, reason = FAILS, "; ".join(problems)
    else:
        verdict, reason = (
            HOLDS,
            "weaker pooled and more architecture-dependent than GPU utilisation",
        )
    return ClaimResult("C6", STATEMENTS["C6"], stat, mem_pooled, text, verdict, reason), details


MIN_SIZE_SPAN = 2.0
"""Q1 looks only at configurations measured on sample counts at least this far apart."""


def dataset_size_table(data: ReportData) -> pd.DataFrame:
    """Per configuration, variant and phase with several sample counts: affine fit of energy on
    samples. Columns: slope_j_per_sample, intercept_j, r2 (NaN under three counts),
    intercept_share (intercept / fitted energy at the largest count)."""
    rows = []
    keys = ["config_id", "family", "variant", "phase", "batch_size", "epochs"]
    for key, sub in data.configs.groupby(keys, sort=True):
        sizes = sub["samples"].nunique()
        # sample counts that differ by a few percent (repeats of one run) say nothing on size
        if sizes < 2 or sub["samples"].max() < MIN_SIZE_SPAN * sub["samples"].min():
            continue
        x = sub["samples"].to_numpy(float)
        y = sub["energy_j"].to_numpy(float)
        slope, intercept = np.polyfit(x, y, 1)
        fit = affine(x, y)
        residual = y - (slope * x + intercept)
        residual_cv = float(np.sqrt(np.mean(residual**2)) / np.mean(y)) if np.mean(y) > 0 else 0
        top = slope * x.max() + intercept
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "sample_counts": int(sizes),
                "min_samples": int(x.min()),
                "max_samples": int(x.max()),
                "slope_j_per_sample": float(slope),
                "intercept_j": float(intercept),
                "r2": fit.r2 if sizes >= 3 else math.nan,
                "intercept_share": float(intercept / top) if top > 0 else math.nan,
                "residual_cv": residual_cv,
            }
        )
    return pd.DataFrame(rows)


def q1(data: ReportData, noise: ReplicateNoise | None = None) -> tuple[ClaimResult, list[Detail]]:
    stat = "R² of energy vs samples per configuration and phase (min shown); intercept share"
    table = dataset_size_table(data)
    if table.empty:
        return _untestable("Q1", stat, "every configuration was measured at one sample count")
    details = [
        Detail("Q1", r.family, r.phase, f"r2[{r.config_id}]", r.r2, r.sample_counts)
        for r in table.itertuples()
    ]
    share = float(table["intercept_share"].median())
    judged = table[table["sample_counts"] >= 3]
    text = f"{len(table)} configuration-phases; median intercept share {fmt(100 * share, 1)} %"
    if judged.empty:
        reason = "only two sample counts per configuration: a line always fits two points"
        return ClaimResult(
            "Q1", STATEMENTS["Q1"], stat, math.nan, text, UNTESTABLE, reason
        ), details
    worst = float(judged["r2"].min())
    text += f"; median R² {fmt(float(judged['r2'].median()), 3)}"
    if worst >= LINEAR_R2:
        verdict = HOLDS
        reason = f"all {len(judged)} fits with ≥ 3 sample counts reach R² ≥ {LINEAR_R2}"
    else:
        bad = judged[judged["r2"] < LINEAR_R2]
        verdict = FAILS
        reason = f"{len(bad)} of {len(judged)} fits below R² {LINEAR_R2}: " + ", ".join(
            f"{r.config_id}/{r.phase} ({fmt(r.r2, 3)})" for r in bad.head(5).itertuples()
        )
        if noise is not None and all(noise.swamps(d) for d in bad["residual_cv"]):
            verdict = INCONCLUSIVE
            reason += (
                f"; every departure from a line (largest residual "
                f"{fmt(100 * float(bad['residual_cv'].max()), 1)} % of the mean) is within "
                "the replicate noise"
            )
    reason += _estimate_note(data)
    return ClaimResult("Q1", STATEMENTS["Q1"], stat, worst, text, verdict, reason), details


def frames_rows(data: ReportData) -> pd.DataFrame:
    """Frames-as-sequence RNN configurations at the reference workload."""
    cfg = data.configs
    if data.rescaled:
        return rescaled_reference(cfg[cfg["variant"] == "frames"], data.reference_batch_size)
    return cfg[
        (cfg["variant"] == "frames")
        & (cfg["samples"] == data.reference_samples)
        & (cfg["batch_size"] == data.reference_batch_size)
        & (cfg["epochs"] == data.reference_epochs)
    ]


def _split_statistics(frame: pd.DataFrame, with_power: bool) -> dict[str, float]:
    """The three statistics that separate MLP/RNN from CNN/CRNN, for one family's rows."""
    train = _sub(frame, None, "train")
    test = _sub(frame, None, "test")
    out = {"log10_train_j_per_tflop": math.nan, "test_r2_vs_params": math.nan}
    if len(train) >= MIN_CONFIGS:
        slope = affine_log(train["flops_total"] / 1e12, train["energy_j"]).slope
        out["log10_train_j_per_tflop"] = math.log10(slope) if slope > 0 else math.nan
    if len(test) >= MIN_CONFIGS:
        out["test_r2_vs_params"] = affine_log(test["params"], test["energy_j"]).r2
    if with_power:
        out["power_auc"] = (
            separation_auc(train["power_avg_w"], test["power_avg_w"])
            if len(train) >= MIN_POWER_RUNS and len(test) >= MIN_POWER_RUNS
            else math.nan
        )
    return out


def q2(data: ReportData) -> tuple[ClaimResult, list[Detail]]:
    stat = "share of split statistics where the 64-frame RNN sides with MLP/RNN"
    frames = frames_rows(data)
    if frames.empty:
        return _untestable("Q2", stat, "no frames-as-sequence RNN rows (variant 'frames') measured")
    with_power = not data.estimated
    mine = _split_statistics(frames, with_power)
    groups: dict[str, dict[str, list[float]]] = {"dense": {}, "conv": {}}
    for name, fams in (("dense", GROUP_DENSE), ("conv", GROUP_CONV)):
        for fam in fams:
            for key, val in _split_statistics(_sub(data.reference, fam, None), with_power).items():
                if math.isfinite(val):
                    groups[name].setdefault(key, []).append(val)
    details: list[Detail] = []
    sides: list[str] = []
    parts: list[str] = []
    for key, val in mine.items():
        dense = groups["dense"].get(key)
        conv = groups["conv"].get(key)
        details.append(Detail("Q2", "rnn-frames", "both", key, val, len(frames)))
        if not math.isfinite(val) or not dense or not conv:
            continue
        d_mean, c_mean = float(np.mean(dense)), float(np.mean(conv))
        side = "MLP/RNN" if abs(val - d_mean) <= abs(val - c_mean) else "CNN/CRNN"
        sides.append(side)
        parts.append(f"{key} {fmt(val)} (MLP/RNN {fmt(d_mean)}, CNN/CRNN {fmt(c_mean)}) → {side}")
    if not sides:
        return _untestable(
            "Q2", stat, "too few frames or paper rows to compute the split statistics"
        )
    share = sides.count("MLP/RNN") / len(sides)
    text = "; ".join(parts)
    if share > 0.5:
        verdict, reason = HOLDS, "the 64-frame RNN still behaves like MLP/RNN on most statistics"
    else:
        verdict = FAILS
        reason = "with a real recurrence the RNN behaves like CNN/CRNN: the split follows the length-1 trick"
    if not with_power:
        reason += " (power statistic left out: energy estimated)"
    return ClaimResult("Q2", STATEMENTS["Q2"], stat, share, text, verdict, reason), details
