"""``open_meter``: which meter ``--meter`` gets, and why."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.meters import KINDS, MeterUnavailable, estimate_banner, open_meter
from joulecast.errors import InvalidArgument

STEADY = Path(__file__).parents[2] / "data" / "traces" / "t4_steady.json"
NO_RAPL = not Path("/sys/class/powercap/intel-rapl").exists()


def _nvml_present() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


@pytest.mark.skipif(not NO_RAPL, reason="this machine has RAPL")
def test_auto_on_cpu_without_rapl_is_the_cpu_time_estimate() -> None:
    with open_meter("auto", device="cpu") as meter:
        assert meter.name == "cpu-time"
        assert meter.estimated
        assert meter.energy_source == "estimate-cpu-time"
        assert "no power meter" in meter.chosen_reason
        banner = estimate_banner(meter)
    assert banner is not None and banner.startswith("energy is ESTIMATED")


def test_replay_is_measured_and_says_so() -> None:
    with open_meter("replay", trace=STEADY, sample_interval_s=0.05) as meter:
        assert meter.name == "replay"
        assert not meter.estimated
        assert estimate_banner(meter) is None
        assert "t4_steady" in meter.chosen_reason


def test_replay_with_codecarbon_alongside() -> None:
    # The window spans several counter update periods: an instant window may see the counter
    # not advance, and then the meter rightly falls back to mean power x duration.
    with open_meter("replay", trace=STEADY, with_codecarbon=True) as meter:
        meter.begin_window("w")
        time.sleep(0.3)
        m = meter.end_window("w")
    assert m.energy_source == "nvml-energy-counter"
    assert not m.short_window
    assert m.codecarbon_mode is not None


def test_cpu_time_with_codecarbon_alongside_keeps_both_readings() -> None:
    with open_meter("cpu-time", device="cpu", with_codecarbon=True, core_watts=5.0) as meter:
        assert meter.name == "cpu-time" and meter.estimated
        meter.begin_window("w")
        total = sum(i * i for i in range(300_000))
        m = meter.end_window("w")
    assert total > 0
    assert m.energy_source == "estimate-cpu-time"
    assert m.codecarbon_energy_j is not None and m.codecarbon_mode is not None
    assert m.cpu_s is not None and m.cpu_s > 0
    assert any(note.startswith("codecarbon ") for note in m.notes)


def test_idle_is_measured_at_opening() -> None:
    with open_meter("replay", trace=STEADY, idle_s=0.05) as meter:
        assert meter.idle_baseline_w == pytest.approx(60, abs=3)


def test_rapl_root_is_injectable(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    (zone / "energy_uj").write_text("1\n")
    with open_meter("rapl", rapl_root=tmp_path) as meter:
        assert meter.name == "rapl" and not meter.estimated


@pytest.mark.skipif(_nvml_present(), reason="this machine has NVML")
def test_explicit_nvml_without_gpu_fails_clearly() -> None:
    with pytest.raises(MeterUnavailable):
        open_meter("nvml", device="cuda")


def test_bad_arguments() -> None:
    assert KINDS == ("auto", "nvml", "rapl", "cpu-time", "codecarbon", "replay")
    with pytest.raises(InvalidArgument, match="unknown meter"):
        open_meter("powermeter")
    with pytest.raises(InvalidArgument, match="trace"):
        open_meter("replay")
    with pytest.raises(InvalidArgument):
        open_meter("replay", trace=STEADY, sample_interval_s=0)
