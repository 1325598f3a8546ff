"""The background sampler and the arithmetic on its traces."""

from __future__ import annotations

import itertools
import time

import pytest

from collector.meters.sampler import Sampler, integrate_power_j, summarize
from joulecast.errors import InvalidArgument
from joulecast.measurement import TraceSample


def test_trapezoid_integral() -> None:
    trace = [TraceSample(0.0, 10.0), TraceSample(1.0, 30.0), TraceSample(3.0, 30.0)]
    assert integrate_power_j(trace) == pytest.approx(20.0 + 60.0)
    assert integrate_power_j(trace[:1]) is None


def test_means_skip_missing_fields() -> None:
    trace = [
        TraceSample(0.0, 10.0, 50.0, None, 100.0),
        TraceSample(0.1, 20.0, 100.0, None, 300.0),
    ]
    stats = summarize(trace)
    assert stats.power_mean_w == 15.0
    assert stats.gpu_util_mean == 75.0
    assert stats.mem_util_mean is None
    assert stats.mem_used_mean_mib == 200.0


def test_samples_at_the_interval_and_at_both_edges() -> None:
    sampler = Sampler(lambda t: TraceSample(t, 1.0), interval_s=0.01).start()
    start = time.monotonic()
    time.sleep(0.2)
    trace = sampler.stop()
    stop = time.monotonic()
    assert 10 <= len(trace) <= 25
    assert trace[0].t_s <= start and trace[-1].t_s >= stop - 0.01
    assert all(b.t_s > a.t_s for a, b in itertools.pairwise(trace))


def test_failing_probe_is_counted_not_fatal() -> None:
    calls = []

    def probe(t: float) -> TraceSample:
        calls.append(t)
        if len(calls) % 2:
            raise OSError("driver hiccup")
        return TraceSample(t, 5.0)

    sampler = Sampler(probe, interval_s=0.01).start()
    time.sleep(0.05)
    trace = sampler.stop()
    assert sampler.errors >= 1 and isinstance(sampler.first_error, OSError)
    assert trace and all(s.power_w == 5.0 for s in trace)


def test_interval_must_be_positive() -> None:
    with pytest.raises(InvalidArgument):
        Sampler(lambda t: TraceSample(t), interval_s=0)
