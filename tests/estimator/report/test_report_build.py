"""`joulecast report` end to end on a synthetic store: figures, REPORT.md, CSVs, errors."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from testkit import a_row

from estimator.report import build_report
from estimator.report.cli import register
from estimator.report.data import load
from estimator.report.figures import utilisation
from joulecast.errors import FailedPrecondition, InvalidArgument, JoulecastError, NotFound
from joulecast.store import MeasurementStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 10_000, path  # a drawn figure, not an empty canvas


def _cv_csv(db: Path, out: Path) -> Path:
    data, store = load(db)
    store.close()
    ref = data.reference
    factor = [1.1 if i % 2 else 0.92 for i in range(len(ref))]
    frame = pd.DataFrame(
        {
            "config_id": ref["config_id"],
            "family": ref["family"],
            "phase": ref["phase"],
            "measured_j": ref["energy_j"],
            "predicted_j": ref["energy_j"] * factor,
        }
    )
    path = out / "cv.csv"
    frame.to_csv(path, index=False)
    return path


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="joulecast")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_report_command_writes_figures_claims_and_csvs(
    make_store: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = make_store()
    cv = _cv_csv(db, tmp_path)
    out = tmp_path / "report"
    assert _run_cli(["report", "--db", str(db), "--out", str(out), "--cv", str(cv)]) == 0
    assert "REPORT.md" in capsys.readouterr().out

    figures = sorted(out.glob("*.png"))
    names = {p.stem for p in figures}
    assert names == {
        "fig1_test_energy",
        "fig2_train_energy",
        "fig3_power_vs_flops",
        "fig4_utilisation",
        "fig5_power_traces",
        "fig6_predicted_vs_measured",
        "fig7_dataset_size",
        "fig8_frames_rnn",
    }
    for path in figures:
        _assert_png(path)

    claims = pd.read_csv(out / "claims.csv")
    assert list(claims["claim"]) == ["C1", "C2", "C3", "C4", "C5", "C6", "Q1", "Q2"]
    assert claims["value"].notna().all()
    assert set(claims["verdict"]) == {"holds"}

    report = (out / "REPORT.md").read_text()
    assert "synthetic-t4" in report and "nvml-energy-counter" in report
    for name in names:
        assert f"]({name}.png)" in report
    for claim in ("C1", "C2", "C3", "C4", "C5", "C6"):
        assert f"| {claim} |" in report
    for csv in ("claims_detail.csv", "configurations.csv", "dataset_size.csv"):
        assert (out / csv).stat().st_size > 0


def test_estimated_store_says_so_and_skips_absent_figures(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    db = make_store(estimated=True, traces=False, frames=None, sizes=None)
    result = build_report(db, tmp_path / "out")
    assert result.estimated
    for claim in ("C4", "C5", "C6"):
        assert result.verdict(claim) == "not testable here"
    assert "fig5_power_traces" in result.skipped
    assert "fig6_predicted_vs_measured" in result.skipped
    report = result.report_path.read_text()
    assert "estimated, not measured" in report
    assert "_Skipped: no stored power traces" in report
    for path in result.figures.values():
        _assert_png(path)


def test_utilisation_figure_says_plainly_when_rows_have_none(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    data, store = load(make_store(cpu=True))
    store.close()
    fig = utilisation(data, tmp_path / "fig4.png")
    assert fig.path is not None and "No GPU or memory utilisation" in fig.note
    assert fig.path.read_bytes()[:8] == PNG_SIGNATURE


def test_user_errors_are_joulecast_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        build_report(tmp_path / "missing.db", tmp_path / "out")
    empty = tmp_path / "empty.db"
    MeasurementStore(empty).close()
    with pytest.raises(FailedPrecondition):
        build_report(empty, tmp_path / "out")
    two = tmp_path / "two.db"
    with MeasurementStore(two) as store:
        for key in ("a", "b"):
            store.put_row(
                a_row(key, hardware=f"hw-{key}", phase="test", energy_j=2.0, energy_source="rapl",
                      energy_is_estimate=None, flops_forward=10, flops_train=30, params=5)
            )  # fmt: skip
    with pytest.raises(InvalidArgument, match="--hardware"):
        build_report(two, tmp_path / "out")
    with pytest.raises(NotFound):
        build_report(two, tmp_path / "out", hardware="hw-c")
    bad_cv = tmp_path / "bad.csv"
    bad_cv.write_text("config_id,energy\nx,1\n")
    with pytest.raises(JoulecastError, match="lack columns"):
        build_report(two, tmp_path / "out", hardware="hw-a", cv_csv=bad_cv)


def test_an_estimated_store_is_never_plotted_as_measured(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    db = make_store(estimated=True, traces=False, frames=None, sizes=None)
    result = build_report(db, tmp_path / "out", cv_csv=_cv_csv(db, tmp_path))
    report = result.report_path.read_text()
    assert "Predicted vs estimated energy (cross-validation)" in report
    assert "Predicted vs measured" not in report
    _assert_png(result.figures["fig6_predicted_vs_measured"])


def test_estimated_rows_beside_measured_ones_are_left_out_and_said_so(
    make_store: Callable[..., Path], tmp_path: Path
) -> None:
    """Three rows of CodeCarbon's TDP estimate (a hundred times the energy) in a metered
    store: the report leaves them out, says how many, and judges only the meter's rows."""
    import dataclasses

    db = make_store(traces=False, frames=None, sizes=None)
    before, store = load(db)
    store.close()
    with MeasurementStore(db) as store:
        rows = store.rows()[:3]
        store.put_rows(
            [
                (
                    dataclasses.replace(
                        r,
                        run_key=r.run_key + "/tdp",
                        repeat=r.repeat + 7,
                        energy_j=r.energy_j * 100,
                        energy_source="estimate-codecarbon-tdp",
                        energy_is_estimate=True,
                    ),
                    (),
                )
                for r in rows
            ]
        )
    data, store = load(db)
    store.close()
    assert data.dropped_estimates == 3 and not data.estimated
    assert len(data.configs) == len(before.configs)
    assert data.configs["energy_j"].max() == pytest.approx(before.configs["energy_j"].max())
    report = build_report(db, tmp_path / "out").report_path.read_text()
    assert "**Left out**: 3 rows with estimated energy" in report
