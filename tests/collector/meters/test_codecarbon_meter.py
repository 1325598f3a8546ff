"""CodeCarbon on this machine, alone and alongside the replayed NVML meter."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector.meters.codecarbon_meter import CodeCarbonMeter
from collector.meters.companion import WithCodeCarbon
from collector.meters.replay import ReplayMeter
from joulecast.measurement import ESTIMATE_PREFIX, SOURCE_NVML_COUNTER, codecarbon_source

STEADY = Path(__file__).parents[2] / "data" / "traces" / "t4_steady.json"
NO_RAPL = not Path("/sys/class/powercap/intel-rapl").exists()


@pytest.fixture(scope="module")
def codecarbon():
    meter = CodeCarbonMeter(device="cpu", measure_power_secs=0.1)
    yield meter
    meter.close()


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def test_sources_say_estimate_for_modelled_modes() -> None:
    assert codecarbon_source("cpu_load") == "estimate-codecarbon-cpu-load"
    assert codecarbon_source("constant") == "estimate-codecarbon-constant"
    assert codecarbon_source("intel_rapl") == "codecarbon-intel-rapl"
    assert codecarbon_source("pynvml") == "codecarbon-pynvml"


@pytest.mark.skipif(not NO_RAPL, reason="this machine has RAPL: CodeCarbon measures")
def test_window_on_this_machine_is_a_positive_estimate(codecarbon: CodeCarbonMeter) -> None:
    codecarbon.begin_window("epoch")
    busy(0.4)
    m = codecarbon.end_window("epoch")
    assert m.energy_source.startswith(f"{ESTIMATE_PREFIX}codecarbon-")
    assert m.is_estimate
    assert m.energy_j > 0
    assert m.codecarbon_energy_j == m.energy_j
    assert m.codecarbon_mode == codecarbon.mode
    assert m.codecarbon_mode.replace("_", "-") in m.energy_source
    # the window's own span: at least the work, plus what stopping the task costs (tens of ms
    # alone, more on a loaded 2-core CI machine)
    assert 0.39 <= m.duration_s < 0.9


def test_windows_reuse_the_started_tracker(codecarbon: CodeCarbonMeter) -> None:
    # A window is a task of the tracker started once (starting one takes seconds: it probes
    # the hardware); how cheap a window is, is measured by benchmarks/bench_meter_overhead.py.
    tracker = codecarbon._tracker
    started = time.perf_counter()
    codecarbon.begin_window("a")
    codecarbon.end_window("a")
    assert codecarbon._tracker is tracker
    assert time.perf_counter() - started < 1.0


def test_describe(codecarbon: CodeCarbonMeter) -> None:
    facts = codecarbon.describe()
    assert facts["codecarbon_mode"] == codecarbon.mode
    assert facts["codecarbon_version"]


def test_alongside_another_meter(codecarbon: CodeCarbonMeter) -> None:
    meter = WithCodeCarbon(ReplayMeter(STEADY, sample_interval_s=0.02), codecarbon)
    meter.set_idle_baseline(10.0)
    meter.begin_window("train")
    busy(0.3)
    m = meter.end_window("train")
    meter.primary.close()
    assert m.energy_source == SOURCE_NVML_COUNTER
    assert m.energy_j == pytest.approx(60 * m.duration_s, rel=0.05)
    assert m.codecarbon_energy_j is not None and m.codecarbon_energy_j > 0
    assert m.codecarbon_mode == codecarbon.mode
    assert m.idle_power_w == 10.0


@pytest.mark.parametrize("lost", ["stopped", "forgotten"])
def test_a_window_codecarbon_loses_keeps_the_primary_reading(
    codecarbon: CodeCarbonMeter, lost: str
) -> None:
    meter = WithCodeCarbon(ReplayMeter(STEADY, sample_interval_s=0.02), codecarbon)
    meter.begin_window("epoch")
    busy(0.1)
    # CodeCarbon's task ends behind the meter's back: stopped, its second stop reports a zero
    # delta; forgotten, its stop returns nothing (as when the tracker refused to start it).
    codecarbon._tracker.stop_task("epoch")
    if lost == "forgotten":
        codecarbon._tracker._tasks.pop("epoch")
    m = meter.end_window("epoch")
    meter.primary.close()
    assert m.energy_source == SOURCE_NVML_COUNTER
    assert m.energy_j == pytest.approx(60 * m.duration_s, rel=0.05)
    assert m.codecarbon_energy_j is None and m.codecarbon_mode is None
    assert any("codecarbon alongside gave no reading" in note for note in m.notes)
    # the tracker still measures the next window
    codecarbon.begin_window("next")
    busy(0.05)
    assert codecarbon.end_window("next").energy_j > 0
