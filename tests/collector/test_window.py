"""The timed protocol: windows of whole batches lasting the target, interleaved repeats."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from collector.campaign.repeatability import main as repeatability_main
from collector.campaign.repeatability import repeat_table
from collector.data import synthetic_clips
from collector.executors.serial import run_serial
from collector.meters.cputime import CpuTimeMeter
from collector.plans import load_plan
from collector.runner import SweepOptions
from collector.window import batches_for_window, samples_for_window
from joulecast.errors import InvalidArgument
from joulecast.store import MeasurementStore


def test_windows_hold_whole_batches_reaching_the_target() -> None:
    assert batches_for_window(0.1, 2.0) == 20
    assert batches_for_window(0.3, 2.0) == 7  # 6 batches = 1.8 s < 2 s
    assert batches_for_window(5.0, 2.0) == 1
    assert samples_for_window(0.25, 8, 2.0) == (8, 64)
    for batch_s in (0.001, 0.037, 0.4, 1.9):
        batches, samples = samples_for_window(batch_s, 4)
        assert batches * batch_s >= 2.0 - 1e-9 and (batches - 1) * batch_s < 2.0
        assert samples == 4 * batches
    with pytest.raises(InvalidArgument):
        batches_for_window(0.0)
    with pytest.raises(InvalidArgument):
        samples_for_window(0.1, 0)


def _plan(tmp_path: Path) -> Path:
    path = tmp_path / "p.json"
    runs = [
        {"family": "mlp", "layers": [1], "hidden": [32]},
        {"family": "cnn", "layers": [1], "hidden": [4]},
    ]
    path.write_text(json.dumps({"name": "p", "defaults": {"samples": 16}, "runs": runs}))
    return path


def test_timed_sweep_interleaves_repeats_and_records_samples(tmp_path: Path) -> None:
    plan = load_plan(str(_plan(tmp_path)))
    options = SweepOptions(repeats=3, window_s=0.15, store_graphs=False)
    with CpuTimeMeter(core_power_w=5.0) as meter, MeasurementStore(tmp_path / "m.db") as store:
        summary = run_serial(plan.runs, synthetic_clips(16), store, meter, options)
        rows = store.rows()
    assert summary.measured == 12 and summary.failed == 0
    # repeat 0 of every configuration before any repeat 1: not back to back
    order = [(r.repeat, r.config_id) for r in rows]
    assert [rep for rep, _ in order] == [0] * 4 + [1] * 4 + [2] * 4
    for row in rows:
        assert row.cpu_s is not None
        assert row.energy_j == pytest.approx(5.0 * row.cpu_s, rel=1e-9)
        assert row.samples % row.batch_size == 0 and row.samples >= row.batch_size
        assert row.energy_is_estimate and row.energy_source == "estimate-cpu-time"
    # every repeat of one configuration-phase holds the same samples, chosen once
    by_phase: dict[tuple[str, str], set[int]] = {}
    for row in rows:
        by_phase.setdefault((row.config_id, row.phase), set()).add(row.samples)
    assert all(len(s) == 1 for s in by_phase.values())
    # the window is sized to the target: more than the plan's 16 clips for these tiny models
    assert any(row.samples > 16 for row in rows)
    table = repeat_table([str(tmp_path / "m.db")])
    assert len(table) == 4 and (table["repeats"] == 3).all()
    assert (table["cv_energy"] >= 0).all() and (table["window_cpu_s"] > 0).all()
    if Path("/proc/stat").is_file():  # the cores other work kept busy, recorded by every window
        assert (table["others_busy_cores"] >= 0).all()
        report = io.StringIO()
        with contextlib.redirect_stdout(report):
            assert repeatability_main([str(tmp_path / "m.db")]) == 0
        split = [line for line in report.getvalue().splitlines() if ", quiet (" in line]
        split += [line for line in report.getvalue().splitlines() if ", crowded (" in line]
        assert split and sum(int(line.split("(")[1].split()[0]) for line in split) == 4


def test_a_resumed_timed_sweep_reuses_the_chosen_windows(tmp_path: Path) -> None:
    plan = load_plan(str(_plan(tmp_path)))
    first = SweepOptions(repeats=1, window_s=0.1, store_graphs=False)
    with CpuTimeMeter(core_power_w=5.0) as meter, MeasurementStore(tmp_path / "m.db") as store:
        run_serial(plan.runs, synthetic_clips(16), store, meter, first)
        again = SweepOptions(repeats=2, window_s=0.1, store_graphs=False, resume=True)
        summary = run_serial(plan.runs, synthetic_clips(16), store, meter, again)
        rows = store.rows()
    assert summary.skipped == 4 and summary.measured == 4
    assert len({r.run_key for r in rows}) == len(rows) == 8
    for config_id, phase in {(r.config_id, r.phase) for r in rows}:
        assert len({r.samples for r in rows if (r.config_id, r.phase) == (config_id, phase)}) == 1


def test_repeats_are_grouped_per_sample_count(tmp_path: Path) -> None:
    """A dataset-size sweep's 8 and 16 clips are two measurements, each with its own repeats."""
    path = tmp_path / "sizes.json"
    runs = [{"family": "mlp", "layers": [1], "hidden": [32], "samples": [8, 16]}]
    path.write_text(json.dumps({"name": "sizes", "defaults": {"samples": 16}, "runs": runs}))
    plan = load_plan(str(path))
    options = SweepOptions(repeats=2, store_graphs=False)
    with CpuTimeMeter(core_power_w=5.0) as meter, MeasurementStore(tmp_path / "s.db") as store:
        run_serial(plan.runs, synthetic_clips(16), store, meter, options)
    table = repeat_table([str(tmp_path / "s.db")]).reset_index()
    assert sorted(zip(table["phase"], table["samples"], strict=True)) == [
        ("test", 8),
        ("test", 16),
        ("train", 8),
        ("train", 16),
    ]
    assert (table["repeats"] == 2).all()
