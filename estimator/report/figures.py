"""The report's figures, one function each. Every function writes one PNG and returns a
:class:`FigureFile`, or writes nothing and returns one with ``path=None`` and a ``note`` saying why.

Families keep the paper's colours everywhere (MLP blue, RNN green, CNN red, CRNN purple); training
is drawn with circles and test with triangles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from estimator.report import style
from estimator.report.data import ReportData, family_key
from joulecast.measurement import PHASES
from joulecast.store import MeasurementStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FigureFile:
    """One figure of the report: ``path`` is None when it was skipped (``note`` says why)."""

    name: str
    title: str
    path: Path | None
    note: str = ""


_FLOPS_LABEL = {
    "test": "FLOPs per sample (forward)",
    "train": "FLOPs per sample (train = 3 × forward)",
}
_COLUMNS = (("all families", None), ("MLP / RNN", ("mlp", "rnn")), ("CNN / CRNN", ("cnn", "crnn")))
_TRANSFORMER_COLUMN = ("Transformer", ("transformer",))
"""A fourth column of figures 1 and 2, drawn only when transformer rows are measured."""
_ORDER = ("mlp", "rnn", "cnn", "crnn", "transformer")


def _family_handles(families: list[str], marker: str = "o") -> list[Line2D]:
    return [
        Line2D([], [], color=style.colour(f), marker=marker, linestyle="", label=style.label(f))
        for f in families
    ]


def _phase_handles() -> list[Line2D]:
    return [
        Line2D([], [], color="black", marker=m, linestyle="", markerfacecolor="none", label=p)
        for p, m in style.PHASE_MARKERS.items()
    ]


def _present(frame: pd.DataFrame) -> list[str]:
    order = [f for f in _ORDER if f in set(frame["family"])]
    return order + sorted(set(frame["family"]) - set(order))


def _workload(data: ReportData) -> str:
    if data.rescaled:
        batch = (
            f"batch {data.reference_batch_size}"
            if data.reference_batch_size
            else "batch as measured"
        )
        return f"rescaled to {data.reference_samples} samples, {batch}"
    return (
        f"{data.reference_samples} samples, batch {data.reference_batch_size}, "
        f"{data.reference_epochs} epoch(s)"
    )


def _energy_label(data: ReportData) -> str:
    return "energy, J (estimated)" if data.estimated else "energy, J"


def energy_grid(data: ReportData, phase: str, path: Path) -> FigureFile:
    """Figure 1 (test) or 2 (train): energy vs FLOPs (top) and vs params (bottom); columns all,
    MLP/RNN, CNN/CRNN, and Transformer when there are transformer rows."""
    number = "1" if phase == "test" else "2"
    name = f"fig{number}_{phase}_energy"
    title = f"Fig. {number}: {phase} energy vs FLOPs and parameters"
    frame = data.reference[data.reference["phase"] == phase]
    if frame.empty:
        return FigureFile(name, title, None, f"no {phase} rows at the reference workload")
    columns = _COLUMNS
    if "transformer" in set(frame["family"]):
        columns = (*_COLUMNS, _TRANSFORMER_COLUMN)
    fig, axes = style.new_figure(2, len(columns), 5.0 * len(columns), 8.5)
    for col, (heading, fams) in enumerate(columns):
        sub = frame if fams is None else frame[frame["family"].isin(fams)]
        for row, (xcol, xlabel) in enumerate(
            (("flops_phase", _FLOPS_LABEL[phase]), ("params", "trainable parameters"))
        ):
            ax: Axes = axes[row, col]
            for fam in _present(sub):
                part = sub[sub["family"] == fam]
                ax.scatter(
                    part[xcol], part["energy_j"], s=36, color=style.colour(fam),
                    marker=style.PHASE_MARKERS[phase], label=style.label(fam), alpha=0.85,
                    edgecolors="white", linewidths=0.4,
                )  # fmt: skip
            if sub.empty:
                ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
            else:
                style.set_scales(ax, sub[xcol].to_numpy(), sub["energy_j"].to_numpy())
            ax.set_xlabel(xlabel)
            ax.set_ylabel(_energy_label(data))
            ax.grid(True, which="major", alpha=0.3)
            if row == 0:
                ax.set_title(heading)
            if not sub.empty:
                ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title} — {data.hardware}, {_workload(data)}", fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)


def power_vs_flop_rate(data: ReportData, path: Path) -> FigureFile:
    """Figure 3: average power (energy / duration) vs FLOP/s; train circles, test triangles."""
    name, title = "fig3_power_vs_flops", "Fig. 3: average power vs FLOP/s"
    frame = data.reference
    fig, axes = style.new_figure(1, 1, 9.0, 6.0)
    ax: Axes = axes[0, 0]
    for fam in _present(frame):
        for phase, marker in style.PHASE_MARKERS.items():
            part = frame[(frame["family"] == fam) & (frame["phase"] == phase)]
            ax.scatter(
                part["flop_rate"], part["power_avg_w"], s=40, marker=marker,
                color=style.colour(fam), alpha=0.85, edgecolors="white", linewidths=0.4,
            )  # fmt: skip
    handles = _family_handles(_present(frame)) + _phase_handles()
    idle = frame["idle_power_w"].dropna()
    if not idle.empty:
        ax.axhline(idle.median(), color="grey", linestyle="--", linewidth=1)
        handles.append(
            Line2D([], [], color="grey", linestyle="--", label=f"idle ({idle.median():.1f} W)")
        )
    style.set_scales(ax, frame["flop_rate"].to_numpy(), np.array([1.0]))
    ax.set_xlabel("FLOP/s (FLOPs of the phase / duration)")
    ax.set_ylabel("average power, W" + (" (estimated)" if data.estimated else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize=9, loc="best")
    ax.set_title(f"{title} — {data.hardware}, {_workload(data)}")
    style.save(fig, str(path))
    return FigureFile(name, title, path)


def utilisation(data: ReportData, path: Path) -> FigureFile:
    """Figure 4: energy vs mean GPU utilisation (left) and mean memory utilisation (right)."""
    name, title = "fig4_utilisation", "Fig. 4: energy vs GPU and memory utilisation"
    frame = data.reference
    columns = (
        ("gpu_util_mean", "mean GPU utilisation, %"),
        ("mem_util_mean", "mean memory utilisation, %"),
    )
    if frame["gpu_util_mean"].notna().sum() == 0 and frame["mem_util_mean"].notna().sum() == 0:
        devices = ", ".join(data.devices) or "unknown"
        note = (
            f"No GPU or memory utilisation was recorded for these rows (device: {devices}).\n"
            "NVML reports utilisation on NVIDIA GPUs only, so this figure has nothing to plot."
        )
        style.message_figure(str(path), title, note)
        return FigureFile(name, title, path, note.replace("\n", " "))
    fig, axes = style.new_figure(1, 2, 13.0, 5.5)
    for i, (col, xlabel) in enumerate(columns):
        ax: Axes = axes[0, i]
        sub = frame[frame[col].notna()]
        for fam in _present(sub):
            for phase, marker in style.PHASE_MARKERS.items():
                part = sub[(sub["family"] == fam) & (sub["phase"] == phase)]
                ax.scatter(
                    part[col], part["energy_j"], s=36, marker=marker, color=style.colour(fam),
                    alpha=0.85, edgecolors="white", linewidths=0.4,
                )  # fmt: skip
        if sub.empty:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        else:
            style.set_scales(ax, np.array([1.0]), sub["energy_j"].to_numpy())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_energy_label(data))
        ax.grid(True, alpha=0.3)
    axes[0, 0].legend(
        handles=_family_handles(_present(frame)) + _phase_handles(), fontsize=9, loc="upper left"
    )
    fig.suptitle(f"{title} — {data.hardware}, {_workload(data)}", fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)


def _trace_frame(store: MeasurementStore, run_key: str) -> pd.DataFrame:
    samples = store.trace(run_key)
    frame = pd.DataFrame({"t_s": [s.t_s for s in samples], "power_w": [s.power_w for s in samples]})
    frame = frame[frame["power_w"].notna()] if not frame.empty else frame
    if not frame.empty:
        frame = frame.assign(t_s=frame["t_s"] - frame["t_s"].min())
    return frame


def power_traces(data: ReportData, store: MeasurementStore, path: Path) -> FigureFile:
    """Power over time of one configuration per family (its most energetic training run and the
    test run of the same configuration), with the idle baseline measured before the run."""
    name, title = "fig5_power_traces", "Power over time of chosen runs"
    ref = data.reference.sort_values("energy_j", ascending=False)
    chosen: list[tuple[str, dict[str, tuple[pd.DataFrame, float]]]] = []
    for fam in _present(ref):
        for config_id in ref[(ref["family"] == fam) & (ref["phase"] == "train")]["config_id"]:
            runs: dict[str, tuple[pd.DataFrame, float]] = {}
            for _, row in ref[(ref["config_id"] == config_id) & (ref["family"] == fam)].iterrows():
                trace = _trace_frame(store, row["run_key"])
                if len(trace) >= 2:
                    runs[row["phase"]] = (trace, row["idle_power_w"])
            if runs:
                chosen.append((f"{style.label(fam)} {config_id}", runs))
                break
    if not chosen:
        return FigureFile(name, title, None, "no stored power traces for these rows")
    ncols = min(2, len(chosen))
    nrows = (len(chosen) + ncols - 1) // ncols
    fig, axes = style.new_figure(nrows, ncols, 6.5 * ncols, 3.8 * nrows)
    for ax in axes.flat[len(chosen) :]:
        ax.axis("off")
    for ax, (heading, runs) in zip(axes.flat, chosen, strict=False):
        idle_values = []
        for phase, (trace, idle) in sorted(runs.items(), reverse=True):
            ax.plot(
                trace["t_s"], trace["power_w"], linestyle="-" if phase == "train" else "--",
                color="black" if phase == "train" else "tab:orange", linewidth=1.2, label=phase,
            )  # fmt: skip
            if idle is not None and np.isfinite(idle):
                idle_values.append(idle)
        if idle_values:
            ax.axhline(float(np.mean(idle_values)), color="grey", linestyle=":", linewidth=1.5,
                       label=f"idle baseline ({np.mean(idle_values):.1f} W)")  # fmt: skip
        ax.set_title(heading, fontsize=10)
        ax.set_xlabel("time since start of the run, s")
        ax.set_ylabel("power, W")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title} — {data.hardware}", fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)


CV_COLUMNS = ("config_id", "family", "phase", "measured_j", "predicted_j")


def predicted_vs_measured(
    cv: pd.DataFrame | None, path: Path, estimated: bool = False
) -> FigureFile:
    """Predicted vs measured energy from cross-validation, one panel per family (log-log, with
    the identity line). An optional ``predictor`` column gives one row of panels per predictor.
    ``estimated``: the rows' energy is an estimate (no meter), and the figure says so instead
    of calling it measured."""
    observed = "estimated" if estimated else "measured"
    name = "fig6_predicted_vs_measured"
    title = f"Predicted vs {observed} energy (cross-validation)"
    if cv is None or cv.empty:
        return FigureFile(name, title, None, "no cross-validation results given (use --cv CSV)")
    predictors = sorted(cv["predictor"].astype(str).unique()) if "predictor" in cv else [""]
    families = _present(cv)
    fig, axes = style.new_figure(
        len(predictors), len(families), 4.2 * len(families), 4.0 * len(predictors)
    )
    for r, predictor in enumerate(predictors):
        rows = cv if predictor == "" else cv[cv["predictor"].astype(str) == predictor]
        for c, fam in enumerate(families):
            ax: Axes = axes[r, c]
            sub = rows[rows["family"] == fam]
            for phase, marker in style.PHASE_MARKERS.items():
                part = sub[sub["phase"] == phase]
                ax.scatter(part["measured_j"], part["predicted_j"], marker=marker, s=36,
                           color=style.colour(fam), alpha=0.85, label=phase)  # fmt: skip
            values = pd.concat([sub["measured_j"], sub["predicted_j"]]).to_numpy(float)
            values = values[np.isfinite(values) & (values > 0)]
            if values.size:
                lo, hi = values.min() / 1.5, values.max() * 1.5
                ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1)
                ax.set_xscale("log")
                ax.set_yscale("log")
                ape = (sub["predicted_j"] - sub["measured_j"]).abs() / sub["measured_j"]
                ax.text(0.04, 0.94, f"MAPE {100 * ape.mean():.1f} %", transform=ax.transAxes,
                        va="top", fontsize=9)  # fmt: skip
            heading = style.label(fam) + (f" — {predictor}" if predictor else "")
            ax.set_title(heading, fontsize=10)
            ax.set_xlabel(f"{observed} energy, J" + (" (no meter)" if estimated else ""))
            ax.set_ylabel("predicted energy, J")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)


def dataset_size(data: ReportData, path: Path) -> FigureFile:
    """Energy vs number of samples, one line per configuration with several sample counts."""
    name, title = "fig7_dataset_size", "Energy vs dataset size"
    cfg = data.configs
    counts = cfg.groupby(["config_id", "variant", "phase"])["samples"].transform("nunique")
    cfg = cfg[counts >= 2]
    if cfg.empty:
        return FigureFile(name, title, None, "every configuration was measured at one sample count")
    fig, axes = style.new_figure(1, 2, 13.0, 5.0)
    for ax, phase in zip(axes.flat, PHASES, strict=True):
        sub = cfg[cfg["phase"] == phase]
        for (_config, variant), part in sub.groupby(["config_id", "variant"]):
            part = part.sort_values("samples")
            fam = family_key(part["family"].iloc[0], variant)
            ax.plot(part["samples"], part["energy_j"], marker=style.PHASE_MARKERS[phase],
                    color=style.colour(fam), alpha=0.8, linewidth=1)  # fmt: skip
        if not sub.empty:
            style.set_scales(ax, sub["samples"].to_numpy(), sub["energy_j"].to_numpy())
        ax.set_xlabel("samples per epoch")
        ax.set_ylabel(_energy_label(data))
        ax.set_title(f"{phase} (one line per configuration)", fontsize=10)
        ax.grid(True, alpha=0.3)
    keys = sorted({family_key(f, v) for f, v in zip(cfg["family"], cfg["variant"], strict=True)})
    axes[0, 0].legend(handles=_family_handles(keys), fontsize=9, loc="upper left")
    fig.suptitle(f"{title} — {data.hardware}", fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)


def frames_rnn(data: ReportData, frames: pd.DataFrame, path: Path) -> FigureFile:
    """The 64-frame RNN (orange stars) against the paper's families, energy vs FLOPs."""
    name, title = "fig8_frames_rnn", "RNN over 64 frames vs the paper's families"
    if frames.empty:
        return FigureFile(name, title, None, "no frames-as-sequence RNN rows measured")
    fig, axes = style.new_figure(1, 2, 13.0, 5.5)
    ref = data.reference
    for ax, phase in zip(axes.flat, ("test", "train"), strict=True):
        sub = ref[ref["phase"] == phase]
        for fam in _present(sub):
            part = sub[sub["family"] == fam]
            ax.scatter(part["flops_phase"], part["energy_j"], s=30, color=style.colour(fam),
                       marker=style.PHASE_MARKERS[phase], alpha=0.55, label=style.label(fam))  # fmt: skip
        mine = frames[frames["phase"] == phase]
        ax.scatter(mine["flops_phase"], mine["energy_j"], s=90, marker="*",
                   color=style.colour("rnn-frames"), edgecolors="black", linewidths=0.5,
                   label=style.label("rnn-frames"))  # fmt: skip
        both = pd.concat([sub, mine])
        if not both.empty:
            style.set_scales(ax, both["flops_phase"].to_numpy(), both["energy_j"].to_numpy())
        ax.set_xlabel(_FLOPS_LABEL[phase])
        ax.set_ylabel(_energy_label(data))
        ax.set_title(phase, fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(f"{title} — {data.hardware}, {_workload(data)}", fontsize=13)
    style.save(fig, str(path))
    return FigureFile(name, title, path)
