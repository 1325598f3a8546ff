"""The cores other work kept busy during a cpu-time window, read from the real /proc/stat."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.meters.cputime import CpuTimeMeter
from collector.meters.machine_load import (
    others_busy_cores,
    read_busy_s,
)
from joulecast.store import MeasurementStore

linux_only = pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs /proc/stat")


def test_busy_seconds_come_from_the_first_line_of_proc_stat(tmp_path: Path) -> None:
    hz = os.sysconf("SC_CLK_TCK")
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal (guest columns are inside user already)
    stat.write_text(f"cpu  {3 * hz} {hz} {2 * hz} {10 * hz} {hz} 0 0 {hz} 0 0\ncpu0 1 2 3\n")
    assert read_busy_s(stat) == 7.0  # idle and iowait are not busy
    assert read_busy_s(tmp_path / "missing") is None
    (tmp_path / "other").write_text("intr 1 2 3\n")
    assert read_busy_s(tmp_path / "other") is None


def test_others_are_the_machines_busy_seconds_minus_our_own_over_the_wall_time() -> None:
    start, end = 100.0, 104.0  # the machine's busy seconds at the window's edges
    assert others_busy_cores(start, end, own_cpu_s=1.0, wall_s=4.0) == pytest.approx(0.75)
    # the tick rounding can make our own seconds exceed the machine's count: never below 0
    assert others_busy_cores(start, end, own_cpu_s=5.0, wall_s=4.0) == 0.0
    assert others_busy_cores(None, end, own_cpu_s=1.0, wall_s=4.0) is None
    assert others_busy_cores(start, end, own_cpu_s=1.0, wall_s=0.0) is None


@linux_only
def test_a_window_beside_a_spinning_process_records_it_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    meter = CpuTimeMeter(core_power_w=4.0, origin="test")
    spinner = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"]
    )
    try:
        time.sleep(0.3)  # the child is running its loop
        with caplog.at_level(logging.WARNING, logger="collector.meters.cputime"):
            for key in ("a", "b"):
                meter.begin_window(key)
                time.sleep(1.0)  # this process idles: the busy core is the spinner's
                m = meter.end_window(key)
                others = m.others_busy_cores
                assert others is not None and others >= 0.6, m.notes
                assert m.shared
    finally:
        spinner.kill()
        spinner.wait()
    assert meter.shared_windows == 2
    warnings = [r for r in caplog.records if "other work kept" in r.getMessage()]
    assert len(warnings) == 1  # once, not once a window


def test_without_proc_stat_the_window_is_measured_and_the_figure_left_out() -> None:
    meter = CpuTimeMeter(core_power_w=4.0, origin="test", machine=lambda: None)
    meter.begin_window("w")
    sum(range(200_000))
    m = meter.end_window("w")
    assert m.energy_j > 0 and m.others_busy_cores is None and meter.shared_windows == 0
    assert not m.shared


@linux_only
def test_collect_says_how_many_windows_ran_beside_other_work(tmp_path: Path) -> None:
    plan = tmp_path / "one.json"
    plan.write_text('{"name": "one", "runs": [{"family": "mlp", "layers": [1], "hidden": [16]}]}')
    db = tmp_path / "m.db"
    args = ["collect", "--plan", str(plan), "--db", str(db), "--meter", "cpu-time"]
    args += ["--samples", "8", "--repeats", "1", "--window-seconds", "0.3", "--with-codecarbon"]
    spinner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.time() + 120\nwhile time.time() < end: pass",
        ]
    )
    try:
        done = subprocess.run(
            [sys.executable, "-m", "joulecast.cli", *args],
            cwd=Path(__file__).parents[3],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        spinner.kill()
        spinner.wait()
    assert done.returncode == 0, done.stderr
    assert "2 of 2 windows shared what the meter reads with other work" in done.stderr
    with MeasurementStore(db, read_only=True) as store:
        figures = [r.others_busy_cores for r in store.rows()]
    assert len(figures) == 2 and all(f is not None and f >= 0.5 for f in figures), figures
