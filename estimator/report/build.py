"""``build_report``: a measurement store in, a folder with REPORT.md, PNG figures and CSVs out."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from estimator.report import claims as claims_mod
from estimator.report import figures, markdown
from estimator.report.data import ReportData, load
from joulecast.errors import InvalidArgument, NotFound

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportResult:
    """What ``build_report`` wrote. ``figures`` maps a figure name to its PNG (skipped figures
    are absent); ``skipped`` maps a skipped figure's name to the reason."""

    out_dir: Path
    report_path: Path
    hardware: str
    energy_sources: dict[str, int]
    estimated: bool
    claims: tuple[claims_mod.ClaimResult, ...]
    figures: dict[str, Path]
    skipped: dict[str, str]
    csv_files: dict[str, Path]

    def verdict(self, claim: str) -> str:
        for c in self.claims:
            if c.claim == claim:
                return c.verdict
        raise KeyError(claim)


def read_cv(source: str | Path | pd.DataFrame | None) -> pd.DataFrame | None:
    """Cross-validation results: a CSV path or a frame with columns
    config_id, family, phase, measured_j, predicted_j (and optionally predictor)."""
    if source is None:
        return None
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"no cross-validation CSV at {path}")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"cannot read cross-validation CSV {path}: {exc}") from exc
    missing = [c for c in figures.CV_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidArgument(f"cross-validation results lack columns: {', '.join(missing)}")
    for col in ("measured_j", "predicted_j"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame = frame[frame["measured_j"] > 0]
    return frame.reset_index(drop=True)


def build_report(
    db_path: str | Path,
    out_dir: str | Path,
    hardware: str | None = None,
    cv_csv: str | Path | pd.DataFrame | None = None,
) -> ReportResult:
    """Draw the figures, test the claims and write ``out_dir/REPORT.md`` with CSVs beside it.

    ``hardware`` is required when the store holds several; ``cv_csv`` (path or frame) feeds the
    predicted-vs-measured figure. Raises JoulecastError subclasses for unusable inputs.
    """
    cv = read_cv(cv_csv)
    data, store = load(db_path, hardware)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        drawn = _draw(data, store, out, cv)
    finally:
        store.close()
    results, details = claims_mod.evaluate(data)
    csv_files = _write_csvs(data, results, details, cv, out)
    report_path = out / "REPORT.md"
    markdown.write(str(report_path), data, results, drawn, list(csv_files), cv)
    log.info("report written to %s", report_path)
    return ReportResult(
        out_dir=out,
        report_path=report_path,
        hardware=data.hardware,
        energy_sources=dict(data.sources),
        estimated=data.estimated,
        claims=tuple(results),
        figures={f.name: f.path for f in drawn if f.path is not None},
        skipped={f.name: f.note for f in drawn if f.path is None},
        csv_files=csv_files,
    )


def _draw(
    data: ReportData, store: object, out: Path, cv: pd.DataFrame | None
) -> list[figures.FigureFile]:
    frames = claims_mod.frames_rows(data)
    return [
        figures.energy_grid(data, "test", out / "fig1_test_energy.png"),
        figures.energy_grid(data, "train", out / "fig2_train_energy.png"),
        figures.power_vs_flop_rate(data, out / "fig3_power_vs_flops.png"),
        figures.utilisation(data, out / "fig4_utilisation.png"),
        figures.power_traces(data, store, out / "fig5_power_traces.png"),  # type: ignore[arg-type]
        figures.predicted_vs_measured(cv, out / "fig6_predicted_vs_measured.png", data.estimated),
        figures.dataset_size(data, out / "fig7_dataset_size.png"),
        figures.frames_rnn(data, frames, out / "fig8_frames_rnn.png"),
    ]


_RUN_COLUMNS = (
    "config_id", "family", "variant", "phase", "samples", "batch_size", "epochs", "repeats",
    "num_layers", "hidden_size", "flops_forward", "flops_train", "flops_phase", "flops_total",
    "params", "duration_s", "energy_j", "energy_std_j", "energy_dynamic_j", "power_avg_w",
    "flop_rate", "idle_power_w", "gpu_util_mean", "mem_util_mean", "mem_used_mean_mib",
)  # fmt: skip


def _write_csvs(
    data: ReportData,
    results: list[claims_mod.ClaimResult],
    details: list[claims_mod.Detail],
    cv: pd.DataFrame | None,
    out: Path,
) -> dict[str, Path]:
    files: dict[str, Path] = {}

    def put(name: str, frame: pd.DataFrame) -> None:
        path = out / name
        frame.to_csv(path, index=False)
        files[name] = path

    put("claims.csv", pd.DataFrame([asdict(r) for r in results]))
    put("claims_detail.csv", pd.DataFrame([asdict(d) for d in details]))
    put("configurations.csv", data.configs[list(_RUN_COLUMNS)])
    sizes = claims_mod.dataset_size_table(data)
    if not sizes.empty:
        put("dataset_size.csv", sizes)
    if cv is not None and not cv.empty:
        put("cross_validation.csv", cv)
    return files
