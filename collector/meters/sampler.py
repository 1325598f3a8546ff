"""A background thread that samples a probe at a fixed interval, and what to do with its trace.

The probe returns one ``TraceSample`` (power in watts, utilisation in percent, memory used in
MiB) for a timestamp the sampler gives it. The sampler takes one sample synchronously when it
starts and one when it stops, so the trace always covers the window's edges; in between it
samples every ``interval_s`` seconds (0.1 s by default; the paper polled every 5 s).

A probe that fails is not retried in a tight loop: the error is counted, the first one kept,
and the caller decides what a trace with gaps is worth (``Sampler.errors``).
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from joulecast.errors import InvalidArgument
from joulecast.measurement import TraceSample

logger = logging.getLogger(__name__)

Probe = Callable[[float], TraceSample]

DEFAULT_INTERVAL_S = 0.1


class Sampler:
    """Samples ``probe`` every ``interval_s`` seconds on a daemon thread.

    Args:
        probe: called with the timestamp (``clock()``, seconds) and returning one sample.
        interval_s: seconds between samples (> 0).
        clock: monotonic clock in seconds used for the timestamps.
        max_samples: the trace keeps at most this many samples (older ones are thinned by 2).
    """

    def __init__(
        self,
        probe: Probe,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = 100_000,
    ) -> None:
        if not interval_s > 0:
            raise InvalidArgument(f"sampling interval must be > 0 s, got {interval_s!r}")
        self.probe = probe
        self.interval_s = interval_s
        self.clock = clock
        self.max_samples = max_samples
        self.errors = 0
        self.first_error: Exception | None = None
        self._samples: list[TraceSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            sample = self.probe(self.clock())
        except Exception as err:  # a failing probe must not kill the thread silently
            self.errors += 1
            if self.first_error is None:
                self.first_error = err
                logger.warning("sampler probe failed: %s", err)
            return
        with self._lock:
            self._samples.append(sample)
            if len(self._samples) > self.max_samples:
                self._samples = self._samples[::2]

    def _run(self) -> None:
        next_t = time.monotonic() + self.interval_s
        while not self._stop.wait(max(0.0, next_t - time.monotonic())):
            self._sample()
            next_t += self.interval_s
            now = time.monotonic()
            if next_t < now:  # fell behind (a slow probe): skip, never burst
                next_t = now + self.interval_s

    def start(self) -> Sampler:
        """Take the first sample now and start the thread."""
        if self._thread is not None:
            raise InvalidArgument("sampler already started")
        self._sample()
        self._thread = threading.Thread(target=self._run, name="joulecast-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> tuple[TraceSample, ...]:
        """Stop the thread, take the last sample now, and return the whole trace."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._sample()
        with self._lock:
            return tuple(self._samples)


@dataclass(frozen=True)
class TraceStats:
    """Means of a trace (None where no sample had the field) and its power integral."""

    samples: int
    power_mean_w: float | None
    gpu_util_mean: float | None
    mem_util_mean: float | None
    mem_used_mean_mib: float | None
    power_integral_j: float | None


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None and not math.isnan(v)]
    return sum(present) / len(present) if present else None


def integrate_power_j(trace: Sequence[TraceSample]) -> float | None:
    """Energy in joules by the trapezoid rule over the samples that carry a power reading;
    None with fewer than two such samples."""
    points = [(s.t_s, s.power_w) for s in trace if s.power_w is not None]
    if len(points) < 2:
        return None
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(points))


def summarize(trace: Sequence[TraceSample]) -> TraceStats:
    """Plain means of each field over the samples (the sampler spaces them evenly)."""
    return TraceStats(
        samples=len(trace),
        power_mean_w=_mean([s.power_w for s in trace]),
        gpu_util_mean=_mean([s.gpu_util_pct for s in trace]),
        mem_util_mean=_mean([s.mem_util_pct for s in trace]),
        mem_used_mean_mib=_mean([s.mem_used_mib for s in trace]),
        power_integral_j=integrate_power_j(trace),
    )


def sample_for(
    probe: Probe,
    duration_s: float,
    interval_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[TraceSample, ...]:
    """Sample ``probe`` for ``duration_s`` seconds (blocking) and return the trace."""
    sampler = Sampler(probe, interval_s=interval_s, clock=clock).start()
    time.sleep(duration_s)
    return sampler.stop()
