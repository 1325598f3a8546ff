"""Profiling in a small pool of worker processes, each profile under a deadline.

Why processes: the profiler is pure Python under the GIL, so threads use one core; and a
pathological graph (2^k nested function calls, a shape vector doubled at every step) can hold a
CPU for minutes or grow to gigabytes. Here such a graph costs one worker: past the deadline, or
when the worker dies or runs out of its capped memory, the worker is killed and replaced, and
the caller gets RESOURCE_EXHAUSTED. The server process only ever holds the graph's bytes and
the small JSON profile that comes back. The profile cache stays in the server (``server.core``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from joulecast.errors import (
    FailedPrecondition,
    InvalidArgument,
    JoulecastError,
    NotFound,
    ResourceLimit,
)
from joulecast.graph import GraphLimits, GraphProfile
from server.profile_worker import HEADER, INT64_MAX

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from server.profile_worker import main; sys.exit(main())"
)
_KINDS: dict[str, type[JoulecastError]] = {
    "ResourceLimit": ResourceLimit,
    "InvalidArgument": InvalidArgument,
    "NotFound": NotFound,
    "FailedPrecondition": FailedPrecondition,
}
_INT_FIELDS = (
    "params",
    "flops_forward",
    "flops_train",
    "weight_bytes",
    "weight_bytes_large",
    "activation_bytes",
    "recurrent_steps",
    "depth",
    "node_count",
)


class ProfilerBug(RuntimeError):
    """The profiler raised something other than a JoulecastError (answered INTERNAL)."""


class WorkerGone(RuntimeError):
    """The worker died or stopped answering mid-job."""


def default_workers() -> int:
    """One worker per core the server may use, plus one, at least two (so one slow graph never
    holds every worker). The spare worker fills the gap between one worker's answer and its
    next job, which waits for a server thread to be scheduled and take the GIL; with exactly
    one worker per core those gaps left a core idle (on 2 cores, 8 clients ran 1.0x to 2.0x
    the single-client rate with 2 workers, 1.95x to 2.05x with 3: benchmarks/bench_server.py)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(2, cores + 1)


def profile_from_json(data: dict) -> GraphProfile:
    """A :class:`GraphProfile` from the worker's JSON, refusing numbers the reply cannot carry
    (int64 fields) or that no graph has (negative sizes)."""
    for name in _INT_FIELDS:
        value = data[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProfilerBug(f"profile field {name} is not an integer: {value!r}")
        if value > INT64_MAX:
            raise ResourceLimit(f"the graph's {name} ({value:.3e}) exceeds 2^63-1; refused")
        if value < 0:
            raise InvalidArgument(f"the graph's {name} is negative ({value}); refused")
    for kind, value in data["flops_by_kind"].items():
        if not 0 <= value <= INT64_MAX:
            raise ResourceLimit(f"the graph's {kind} FLOPs ({value}) are out of range; refused")
    for kind, value in data.get("activation_bytes_by_kind", {}).items():
        if not 0 <= value <= INT64_MAX:
            raise ResourceLimit(f"the graph's {kind} activation bytes ({value}) are out of range")
    data = {
        **data,
        "warnings": tuple(data.get("warnings", ())),
        "activation_sizes": tuple(
            (int(size), int(n)) for size, n in data.get("activation_sizes", ())
        ),
    }
    return GraphProfile(**data)


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, limits: GraphLimits, memory_bytes: int, start_timeout_s: float) -> None:
        env = dict(os.environ)
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BOOTSTRAP,
                str(ROOT),
                json.dumps(dataclasses.asdict(limits)),
                str(memory_bytes),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.jobs = 0
        ready = self._read_frame(time.monotonic() + start_timeout_s)
        if json.loads(ready) != {"ready": True}:
            self.kill()
            raise WorkerGone("a profiling worker did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_exact(self, size: int, deadline: float, up_to: int = 0) -> bytes:
        """``size`` bytes at least (up to ``up_to`` if larger, when already written)."""
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        parts: list[bytes] = []
        left = size
        most = max(size, up_to)
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                raise TimeoutError
            chunk = os.read(fd, min(most, 1 << 20))
            if not chunk:
                raise WorkerGone("the profiling worker exited")
            parts.append(chunk)
            left -= len(chunk)
            most -= len(chunk)
        return b"".join(parts)

    def _read_frame(self, deadline: float) -> bytes:
        """One answer: its header and, when the worker wrote them together (it does, and it
        writes nothing else until the next job), its payload in the same read."""
        first = self._read_exact(HEADER.size, deadline, up_to=1 << 16)
        (size,) = HEADER.unpack_from(first)
        payload = first[HEADER.size :]
        if len(payload) > size:
            raise WorkerGone("the profiling worker wrote past its answer")
        if len(payload) == size:
            return payload
        return payload + self._read_exact(size - len(payload), deadline)

    def _send(self, data: bytes) -> None:
        """The frame in one ``writev`` (the buffered pipe wrote the 8-byte header and the graph
        in two calls: each let go of the GIL and woke the worker, for about 40 µs of the
        server's CPU a job with 8 threads asking at once)."""
        fd = self.proc.stdin.fileno()  # type: ignore[union-attr]
        header = HEADER.pack(len(data))
        sent = os.writev(fd, [header, data])
        if sent < len(header) + len(data):  # a signal cut a long write short
            rest = memoryview(header + data)[sent:]
            while rest:
                rest = rest[os.write(fd, rest) :]

    def ask(self, data: bytes, deadline: float) -> dict:
        """Send one graph and wait for its answer until ``deadline`` (monotonic seconds)."""
        try:
            self._send(data)
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise WorkerGone("the profiling worker exited") from exc
        self.jobs += 1
        return json.loads(self._read_frame(deadline))

    def rss_bytes(self) -> int:
        try:
            with open(f"/proc/{self.pid}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]
        self.proc.wait()


class ProfilePool:
    """``workers`` processes that profile graphs; :meth:`profile` is thread-safe.

    ``deadline_s``: longest one profile may take; ``memory_bytes``: each worker's address-space
    cap (``RLIMIT_AS``); ``recycle_rss_bytes``: a worker whose resident memory is above this after
    a job is replaced (a big graph must not keep its memory); ``wait_s``: longest a call waits
    for a free worker before RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        limits: GraphLimits,
        *,
        workers: int | None = None,
        deadline_s: float = 4.0,
        memory_bytes: int = 1536 * MiB,
        recycle_rss_bytes: int = 512 * MiB,
        wait_s: float = 30.0,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.limits = limits
        self.size = workers or default_workers()
        self.deadline_s = deadline_s
        self.memory_bytes = memory_bytes
        self.recycle_rss_bytes = recycle_rss_bytes
        self.wait_s = wait_s
        self._start_timeout_s = start_timeout_s
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._live: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0
        for _ in range(self.size):
            self._start_one()

    # -- workers ---------------------------------------------------------------------------

    def _start_one(self) -> None:
        """Start a worker in the background; it joins the idle queue once ready."""

        def run() -> None:
            for attempt in range(3):
                try:
                    worker = _Worker(self.limits, self.memory_bytes, self._start_timeout_s)
                except (WorkerGone, TimeoutError, OSError, ValueError) as exc:
                    logger.error("profiling worker failed to start (try %d): %s", attempt + 1, exc)
                    continue
                with self._lock:
                    if self._closed:
                        worker.kill()
                        return
                    self._live.add(worker)
                self._idle.put(worker)
                return

        threading.Thread(target=run, name="joulecast-profile-start", daemon=True).start()

    def _retire(self, worker: _Worker, why: str) -> None:
        logger.warning("profiling worker %d replaced: %s", worker.pid, why)
        with self._lock:
            self._live.discard(worker)
            closed = self._closed
        worker.kill()
        self.replaced += 1
        if not closed:
            self._start_one()

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._live)

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """True once every worker has started (for tests and benchmarks)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self._idle.qsize() >= self.size:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._live.clear()
        for worker in workers:
            worker.kill()

    # -- profiling -------------------------------------------------------------------------

    def profile(self, data: bytes) -> GraphProfile:
        """The profile of one graph, or the profiler's refusal; RESOURCE_EXHAUSTED past the
        deadline, the memory cap, or when no worker frees up within ``wait_s``."""
        if self._closed:
            raise FailedPrecondition("the server is shutting down")
        if len(data) > self.limits.max_bytes:
            raise ResourceLimit(
                f"graph is {len(data)} bytes; the limit is {self.limits.max_bytes} bytes"
            )
        try:
            worker = self._idle.get(timeout=self.wait_s)
        except queue.Empty:
            raise ResourceLimit(
                f"every profiling worker stayed busy for {self.wait_s:g} s; try again"
            ) from None
        started = time.monotonic()
        try:
            reply = worker.ask(data, started + self.deadline_s)
        except TimeoutError:
            self._retire(worker, f"profile ran past {self.deadline_s:g} s")
            raise ResourceLimit(
                f"profiling this graph took longer than {self.deadline_s:g} s; refused"
            ) from None
        except (WorkerGone, ValueError) as exc:
            code = worker.proc.poll()
            self._retire(worker, f"it ended mid-job ({exc}, exit {code})")
            raise ResourceLimit(
                "profiling this graph exhausted a worker (memory or a crash); refused"
            ) from None
        rss = reply.pop("rss_bytes", None) if isinstance(reply, dict) else None
        if not isinstance(rss, int) or isinstance(rss, bool) or rss <= 0:
            rss = worker.rss_bytes()
        if rss > self.recycle_rss_bytes:
            self._retire(worker, f"resident memory above {self.recycle_rss_bytes >> 20} MiB")
        else:
            self._idle.put(worker)
        if "ok" in reply:
            return profile_from_json(reply["ok"])
        kind = reply.get("error", "Internal")
        message = str(reply.get("message", ""))
        if kind in _KINDS:
            raise _KINDS[kind](message)
        raise ProfilerBug(message)
