"""The RAPL meter on a fake powercap folder made of real files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from collector.meters.base import MeterUnavailable
from collector.meters.rapl import RaplMeter, RaplZone, counter_delta_uj, find_package_zones
from collector.meters.replay import ManualClock
from collector.meters.sampler import Sampler
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


class _BurningClock(ManualClock):
    """A manual clock beside a package that draws ``watts``: moving the clock moves the
    package's counter file with it, as a real CPU's would."""

    def __init__(self, counter: Path, watts: float) -> None:
        super().__init__(0.0)
        self.counter = counter
        self.watts = watts
        self.energy_uj = int(counter.read_text())

    def advance(self, dt_s: float) -> None:
        super().advance(dt_s)
        self.energy_uj += round(self.watts * dt_s * 1e6)
        write(self.counter, self.energy_uj)


def test_a_pause_after_the_first_read_stretches_duration_and_energy_alike(
    powercap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's duration runs from its first counter read to its last, so a thread paused
    right after the first read (starting the sampler thread, say) adds to both: with the clock
    read after the sampler had started, this 16 ms window of a 40 W package read 165 W."""
    clock = _BurningClock(powercap / "intel-rapl:1" / "energy_uj", watts=40.0)
    start = Sampler.start

    def start_then_pause(self: Sampler) -> Sampler:
        started = start(self)
        clock.advance(0.05)
        return started

    monkeypatch.setattr(Sampler, "start", start_then_pause)
    with RaplMeter(root=powercap, sample_interval_s=60, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(0.016)
        m = meter.end_window("w")
    assert m.duration_s == pytest.approx(0.066)
    assert m.energy_j == pytest.approx(40.0 * 0.066)
    assert m.power_mean_w == pytest.approx(40.0)


def test_a_paused_counter_read_is_read_again(
    powercap: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read whose clock reads lie far apart was paused midway: it is read again, and the
    window starts at the tight read."""
    clock = _BurningClock(powercap / "intel-rapl:1" / "energy_uj", watts=40.0)
    read = RaplZone.read_uj
    reads = [0]

    def read_paused_once(self: RaplZone) -> int:
        reads[0] += 1
        if reads[0] == 1:
            clock.advance(0.05)
        return read(self)

    monkeypatch.setattr(RaplZone, "read_uj", read_paused_once)
    with RaplMeter(root=powercap, sample_interval_s=60, clock=clock) as meter:
        reads[0] = 0  # the zones' readability check at construction is not a window's read
        meter.begin_window("w")
        clock.advance(0.016)
        m = meter.end_window("w")
    assert reads[0] == 3 * 2  # 2 zones: the paused first read, again, and the last
    assert m.duration_s == pytest.approx(0.016)
    assert m.power_mean_w == pytest.approx(40.0)
