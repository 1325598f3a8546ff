"""The RAPL meter on a fake powercap folder made of real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collector.meters.base import MeterUnavailable
from collector.meters.rapl import RaplMeter, counter_delta_uj, find_package_zones
from joulecast.measurement import SOURCE_RAPL

MAX_UJ = 262_143_328_850


def write(path: Path, value: int | str) -> None:
    """Replace a file atomically, as the kernel's counter never reads half-written."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def zone(root: Path, folder: str, name: str, energy_uj: int) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    write(path / "name", name)
    write(path / "max_energy_range_uj", MAX_UJ)
    write(path / "energy_uj", energy_uj)
    return path


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    zone(tmp_path, "intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 5)  # a sub-zone: inside package-0 already
    zone(tmp_path, "intel-rapl:1", "package-1", 1_000_000)
    zone(tmp_path, "intel-rapl-mmio:0", "package-0", 7)  # the MMIO duplicate of package-0
    return tmp_path


def test_counter_delta_handles_wrap() -> None:
    assert counter_delta_uj(100, 250, 1000) == 150
    assert counter_delta_uj(900, 100, 1000) == 200


def test_only_package_zones_are_read(powercap: Path) -> None:
    assert [z.path.name for z in find_package_zones(powercap)] == ["intel-rapl:0", "intel-rapl:1"]


def test_window_energy_across_a_wrap(powercap: Path) -> None:
    with RaplMeter(root=powercap, sample_interval_s=60) as meter:
        meter.begin_window("w")
        write(powercap / "intel-rapl:0" / "energy_uj", 2_000_000)  # wrapped: +3 J
        write(powercap / "intel-rapl:1" / "energy_uj", 1_500_000)  # +0.5 J
        m = meter.end_window("w")
    assert m.energy_source == SOURCE_RAPL
    assert m.energy_j == pytest.approx(3.5)
    assert not m.short_window
    assert any("wrapped 1" in note for note in m.notes)


def test_several_wraps_in_one_window_are_all_counted(powercap: Path) -> None:
    counter = powercap / "intel-rapl:0" / "energy_uj"
    with RaplMeter(root=powercap, sample_interval_s=0.01) as meter:
        meter.begin_window("w")
        for value in (MAX_UJ - 500_000, 4_000_000, MAX_UJ - 100_000, 1_000_000):
            time.sleep(0.1)
            write(counter, value)
        time.sleep(0.1)
        m = meter.end_window("w")
    # package-0: +0.5 J, +4.5 J (wrap), +(MAX-4.1e6) uJ, +1.1 J (wrap); package-1 unchanged
    expected_uj = 500_000 + 4_500_000 + (MAX_UJ - 100_000 - 4_000_000) + 1_100_000
    assert m.energy_j == pytest.approx(expected_uj / 1e6)
    assert any("wrapped 2" in note for note in m.notes)
    assert len(m.trace) > 10


def test_idle_baseline_is_subtracted(powercap: Path) -> None:
    with RaplMeter(root=powercap, sample_interval_s=60) as meter:
        meter.set_idle_baseline(2.0)
        meter.begin_window("w")
        time.sleep(0.05)
        write(powercap / "intel-rapl:1" / "energy_uj", 3_000_000)
        m = meter.end_window("w")
    assert m.idle_power_w == 2.0
    assert m.energy_dynamic_j == pytest.approx(2.0 - 2.0 * m.duration_s)


def test_counter_that_does_not_move_is_flagged(powercap: Path) -> None:
    with RaplMeter(root=powercap, sample_interval_s=60) as meter:
        meter.begin_window("w")
        m = meter.end_window("w")
    assert m.short_window and m.energy_j == 0
    assert any("did not advance" in note for note in m.notes)


def test_no_powercap_is_our_error(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="does not exist"):
        RaplMeter(root=tmp_path / "absent")
    with pytest.raises(MeterUnavailable, match="no RAPL package zone"):
        RaplMeter(root=tmp_path)


def test_unreadable_counter_is_our_error(tmp_path: Path) -> None:
    path = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (path / "energy_uj").unlink()
    (path / "energy_uj").mkdir()  # reading it fails even as root
    with pytest.raises(MeterUnavailable, match="cannot read"):
        RaplMeter(root=tmp_path)
