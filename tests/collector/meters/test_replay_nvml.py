"""The NVML meter on recorded traces, through the fake pynvml of ``replay.py``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.meters.base import MeterUnavailable
from collector.meters.nvml import NvmlMeter
from collector.meters.replay import (
    NVML_ERROR_NOT_SUPPORTED,
    ManualClock,
    NVMLError,
    ReplayMeter,
    ReplayNvml,
    Trace,
)
from collector.meters.sampler import summarize
from joulecast.errors import InvalidArgument
from joulecast.measurement import SOURCE_NVML_COUNTER, SOURCE_NVML_INTEGRAL

TRACES = Path(__file__).parents[2] / "data" / "traces"
STEADY = TRACES / "t4_steady.json"
EPOCH = TRACES / "t4_epoch.json"
IDLE = TRACES / "t4_idle.json"


def window(meter, seconds_real: float, key: str = "w"):
    meter.begin_window(key)
    time.sleep(seconds_real)
    return meter.end_window(key)


def test_counter_energy_is_the_traces_counter_difference() -> None:
    clock = ManualClock(1.0)
    with ReplayMeter(STEADY, clock=clock, sample_interval_s=0.01) as meter:
        meter.begin_window("train")
        clock.advance(3.0)
        m = meter.end_window("train")
        reads = meter.nvml.counter_reads
    trace = Trace.load(STEADY)
    expected_j = (int(trace.energy_mj_at(4.0)) - int(trace.energy_mj_at(1.0))) / 1000
    assert m.energy_source == SOURCE_NVML_COUNTER
    assert m.energy_j == pytest.approx(expected_j, abs=1e-9)
    assert m.energy_j == pytest.approx((reads[-1][1] - reads[-2][1]) / 1000)
    assert m.duration_s == pytest.approx(3.0)
    assert 170 < m.energy_j < 190  # ~60 W for 3 s
    assert not m.short_window
    assert "replayed trace t4_steady" in m.notes


def _pause_first_counter_read(meter: ReplayMeter, clock: ManualClock, pause_s: float) -> None:
    """The next counter read finds the clock ``pause_s`` later than the read before it, as a
    thread paused between a clock read and the counter read does; later reads do not."""
    read = meter._device.total_energy_mj
    paused = [False]

    def read_after_a_pause() -> int | None:
        if not paused[0]:
            paused[0] = True
            clock.advance(pause_s)
        return read()

    meter._device.total_energy_mj = read_after_a_pause  # type: ignore[method-assign]


def test_a_paused_counter_read_neither_shortens_nor_stretches_a_window() -> None:
    """A window's duration spans what its counter difference spans: the counter is stamped at
    the middle of the clock reads around it, and a read that was paused is tried again. With
    the time taken on one side only, this 16 ms window of a ~60 W board read ~14 W."""
    clock = ManualClock(1.0)
    with ReplayMeter(STEADY, clock=clock, sample_interval_s=0.01) as meter:
        _pause_first_counter_read(meter, clock, 0.05)
        reads_before = len(meter.nvml.counter_reads)
        meter.begin_window("w")
        assert len(meter.nvml.counter_reads) == reads_before + 2  # the paused read, again
        clock.advance(0.016)
        m = meter.end_window("w")
    trace = Trace.load(STEADY)
    expected_j = (int(trace.energy_mj_at(1.066)) - int(trace.energy_mj_at(1.05))) / 1000
    assert m.duration_s == pytest.approx(0.016)
    assert m.energy_j == pytest.approx(expected_j, abs=1e-9)
    assert 50 < m.energy_j / m.duration_s < 70


def test_counter_keeps_counting_when_the_trace_loops() -> None:
    clock = ManualClock(9.0)
    with ReplayMeter(STEADY, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(3.0)  # 9 s -> 12 s on a 10 s trace
        m = meter.end_window("w")
    assert 170 < m.energy_j < 190


def test_power_integral_matches_the_counter_within_one_percent() -> None:
    trace = Trace.load(STEADY)
    with ReplayMeter(trace, speed=10, energy_counter=False, sample_interval_s=0.01) as meter:
        assert meter.energy_source == SOURCE_NVML_INTEGRAL
        m = window(meter, 0.6)  # about 6 s of trace time
    t0, t1 = m.trace[0].t_s, m.trace[-1].t_s
    counter_j = (trace.energy_mj_at(t1) - trace.energy_mj_at(t0)) / 1000
    assert m.energy_source == SOURCE_NVML_INTEGRAL
    assert len(m.trace) > 30
    assert m.energy_j == pytest.approx(counter_j, rel=0.01)
    assert not m.short_window


def test_utilisation_and_memory_means() -> None:
    trace = Trace.load(STEADY)
    with ReplayMeter(trace, speed=10, sample_interval_s=0.01) as meter:
        m = window(meter, 0.5)
    first, last = trace.row_at(m.trace[0].t_s), trace.row_at(m.trace[-1].t_s)
    rows = range(first, last + 1)
    expect_gpu = sum(trace.gpu_util_pct[i] for i in rows) / len(rows)
    expect_mem = sum(trace.mem_util_pct[i] for i in rows) / len(rows)
    assert m.gpu_util_mean == pytest.approx(expect_gpu, abs=1.5)
    assert m.mem_util_mean == pytest.approx(expect_mem, abs=1.0)
    assert m.mem_used_mean_mib == pytest.approx(2100)
    assert m.power_mean_w == pytest.approx(60, abs=0.5)
    stats = summarize(m.trace)
    assert stats.gpu_util_mean == m.gpu_util_mean


def test_idle_baseline_is_subtracted() -> None:
    with ReplayMeter(EPOCH, speed=10, sample_interval_s=0.01) as meter:
        idle_w = meter.calibrate_idle(0.12)  # the first 2 s of the trace are idle
        assert idle_w == pytest.approx(10.0, abs=0.5)
        assert meter.idle_baseline_w == idle_w
        time.sleep(0.15)  # into the training phase
        m = window(meter, 0.4)
    assert m.idle_power_w == idle_w
    assert m.energy_dynamic_j == pytest.approx(m.energy_j - idle_w * m.duration_s)
    assert 0 < m.energy_dynamic_j < m.energy_j


def test_no_baseline_leaves_dynamic_energy_empty() -> None:
    clock = ManualClock()
    with ReplayMeter(STEADY, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(1.0)
        m = meter.end_window("w")
    assert m.idle_power_w is None and m.energy_dynamic_j is None


def test_counter_not_supported_falls_back_to_power_integral() -> None:
    nvml = ReplayNvml(Trace.load(STEADY), energy_counter=False)
    with NvmlMeter(nvml=nvml, clock=nvml.clock, sample_interval_s=0.01) as meter:
        assert not meter.use_counter
        m = window(meter, 0.3)
    assert m.energy_source == SOURCE_NVML_INTEGRAL
    assert m.energy_j == pytest.approx(60 * m.duration_s, rel=0.03)


def test_short_window_is_flagged_not_zero() -> None:
    clock = ManualClock(2.0)
    with ReplayMeter(STEADY, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(0.05)  # shorter than the counter's 100 ms update period
        m = meter.end_window("w")
    assert m.short_window
    assert m.energy_j > 0


def test_counter_that_does_not_advance_is_flagged(tmp_path: Path) -> None:
    flat = tmp_path / "flat.json"
    flat.write_text(
        '{"columns":["t_s","energy_mj","power_w","gpu_util_pct","mem_util_pct","mem_used_mib"],'
        '"rows":[[0,1000,12.0,0,0,400],[10,1000,12.0,0,0,400]]}'
    )
    clock = ManualClock(1.0)
    with ReplayMeter(flat, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(0.5)
        m = meter.end_window("w")
    assert m.short_window
    assert m.energy_source == SOURCE_NVML_INTEGRAL
    assert m.energy_j == pytest.approx(6.0)  # mean power 12 W x 0.5 s, not a silent zero
    assert any("did not advance" in note for note in m.notes)


def test_a_counter_step_inside_a_short_window_is_not_taken_for_its_energy(tmp_path: Path) -> None:
    # The driver refreshes the counter every tens of ms: a 1 ms window can straddle one refresh
    # and see 7 J arrive at once, 7 kW on a 70 W board. The sampled power answers instead.
    stepped = tmp_path / "stepped.json"
    stepped.write_text(
        '{"power_limit_w": 70, "columns":["t_s","energy_mj","power_w","gpu_util_pct",'
        '"mem_util_pct","mem_used_mib"],"rows":[[0,1000,30.0,50,10,400],[1.0,1000,30.0,50,10,'
        "400],[1.0001,8000,30.0,50,10,400],[10,8000,30.0,50,10,400]]}"
    )
    clock = ManualClock(0.9995)
    with ReplayMeter(stepped, clock=clock) as meter:
        meter.begin_window("w")
        clock.advance(0.001)
        m = meter.end_window("w")
    assert m.short_window
    assert m.energy_source == SOURCE_NVML_INTEGRAL
    assert m.energy_j == pytest.approx(30.0 * m.duration_s, rel=1e-6)
    assert any("stepped by 7000 mJ" in note and "board limit 70 W" in note for note in m.notes)


def test_describe_names_gpu_driver_and_nvml() -> None:
    with ReplayMeter(STEADY) as meter:
        facts = meter.describe()
    assert facts["device_name"] == "Tesla T4"
    assert facts["driver"] == "535.104.05"
    assert facts["nvml_version"] == "12.535.104.05"
    assert facts["meter"] == "replay"


def test_missing_gpu_is_our_error() -> None:
    with pytest.raises(MeterUnavailable, match="no GPU 1"):
        NvmlMeter(gpu_index=1, nvml=ReplayNvml(Trace.load(STEADY)))


def test_nvml_errors_become_meter_unavailable() -> None:
    nvml = ReplayNvml(Trace.load(STEADY))
    meter = NvmlMeter(nvml=nvml)
    nvml.nvmlShutdown()  # pull the driver away under the meter
    with pytest.raises(MeterUnavailable, match="Uninitialized"):
        meter.begin_window("w")


def test_nothing_touches_nvml_or_codecarbon_at_import() -> None:
    code = (
        "import sys, collector.meters, collector.meters.nvml, collector.meters.replay, "
        "collector.meters.codecarbon_meter, collector.meters.rapl, collector.meters.select; "
        "assert 'pynvml' not in sys.modules and 'codecarbon' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_other_processes_on_the_gpu_are_named_in_the_notes_and_warned_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The board's counter counts every process's kernels: a window shared with another
    process must say so (the replayed NVML lists this process and one other)."""
    clock = ManualClock(1.0)
    own = os.getpid()
    with (
        caplog.at_level(logging.WARNING, logger="collector.meters.nvml"),
        ReplayMeter(STEADY, clock=clock, processes=[own, own + 100_000]) as meter,
    ):
        for key in ("a", "b"):
            meter.begin_window(key)
            clock.advance(1.0)
            m = meter.end_window(key)
            assert "gpu_processes=2" in m.notes and m.gpu_other_processes == 1
            assert m.shared
        assert meter.shared_windows == 2
    assert len([r for r in caplog.records if "other process(es) ran on GPU" in r.getMessage()]) == 1


def test_a_gpu_to_itself_and_an_nvml_without_process_lists() -> None:
    def one_window(processes: list[int] | None) -> tuple[tuple[str, ...], int | None, int]:
        clock = ManualClock(1.0)
        with ReplayMeter(STEADY, clock=clock, processes=processes) as meter:
            meter.begin_window("w")
            clock.advance(1.0)
            m = meter.end_window("w")
            assert m.shared == (meter.shared_windows == 1)
            return m.notes, m.gpu_other_processes, meter.shared_windows

    notes, others, shared = one_window([os.getpid()])
    assert others == 0 and shared == 0
    # in a container NVML reports host ids: one context is ours, the rest are others
    notes, others, shared = one_window([os.getpid() + 1, os.getpid() + 2, os.getpid() + 3])
    assert others == 2
    assert "gpu_other_processes is a lower bound (this process's id is not among NVML's)" in notes
    assert shared == 1
    notes, others, shared = one_window(None)  # NVML cannot list processes: no figure, no warning
    assert not any(n.startswith("gpu_") for n in notes) and others is None and shared == 0


def test_the_power_limit_is_read_at_the_window_edges(tmp_path: Path) -> None:
    clock = ManualClock(1.0)
    with ReplayMeter(STEADY, clock=clock) as meter:
        assert window_of(meter, clock, 1.0).power_limit_w == 70.0
        meter.nvml.power_limit_w = 55.5  # `nvidia-smi -pl 55.5` between two windows
        assert window_of(meter, clock, 1.0).power_limit_w == 55.5
        meter.begin_window("changed")
        meter.nvml.power_limit_w = 65.0  # ... and during one: it ran under no one limit
        clock.advance(1.0)
        changed = meter.end_window("changed")
    assert changed.power_limit_w is None
    assert "power limit changed during the window: 55.5 W -> 65 W" in changed.notes


def test_a_board_without_a_power_limit_answers_not_supported(tmp_path: Path) -> None:
    doc = json.loads(STEADY.read_text())
    del doc["power_limit_w"]
    (tmp_path / "nolimit.json").write_text(json.dumps(doc))
    clock = ManualClock(1.0)
    with ReplayMeter(tmp_path / "nolimit.json", clock=clock) as meter:
        with pytest.raises(NVMLError) as caught:
            meter.nvml.nvmlDeviceGetPowerManagementLimit(0)
        assert caught.value.value == NVML_ERROR_NOT_SUPPORTED
        m = window_of(meter, clock, 1.0)
    assert m.power_limit_w is None and m.energy_j > 0
    for bad in (0, -70, "70", True, 1e400):
        doc["power_limit_w"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(doc))
        with pytest.raises(InvalidArgument, match="power_limit_w"):
            Trace.load(tmp_path / "bad.json")


def window_of(meter: ReplayMeter, clock: ManualClock, seconds: float, key: str = "w"):
    meter.begin_window(key)
    clock.advance(seconds)
    return meter.end_window(key)
