"""Work on uploaded graphs in a small pool of worker processes, each job under a deadline.

Why processes: the profiler is pure Python under the GIL, so threads use one core; and a
pathological graph (2^k nested function calls, a shape vector doubled at every step) can hold a
CPU for minutes or grow to gigabytes. Here such a graph costs one worker: past the deadline, or
when the worker dies or runs out of its capped memory, the worker is killed and replaced, and
the caller gets RESOURCE_EXHAUSTED. The server process only ever holds the graph's bytes and
the small JSON answer that comes back. Two jobs: a graph's profile, and a layer-sum answer
(per-node records and their prediction, for a hardware served by layer-sum). The profile cache
stays in the server (``server.core``).

Two more bounds keep the pool for everyone. A job whose caller went away (cancelled, gone,
past its deadline: :class:`server.cancel.CallCancel`) stops: a waiting one gives up, a running
one's worker is killed and replaced. And large graphs (more than ``light_bytes``) may hold all
workers but one, so that a flood of them never makes an ordinary graph wait behind it.
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
from collections.abc import Callable
from pathlib import Path

from joulecast.errors import (
    Cancelled,
    FailedPrecondition,
    InvalidArgument,
    JoulecastError,
    ResourceLimit,
)
from joulecast.graph import GraphLimits, GraphProfile
from server.cancel import CallCancel
from server.profile_worker import (
    HEADER,
    INT64_MAX,
    INTERRUPT,
    JOB_LAYER_SUM,
    JOB_PROFILE,
    LAYER_HEADER,
    error_classes,
)

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from server.profile_worker import main; sys.exit(main())"
)
_KINDS: dict[str, type[JoulecastError]] = {cls.__name__: cls for cls in error_classes()}
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


class CallerGone(RuntimeError):
    """The job's caller went away while its worker worked."""


POLL_S = 0.05
"""How often a waiting job looks whether its caller is still there, in seconds."""
STOP_WAIT_S = 2.0
"""How long a stopped job's worker has to answer before it is killed, in seconds (a job in
C code, a protobuf parse or a model call, answers when that returns)."""


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

    def __init__(
        self,
        limits: GraphLimits,
        memory_bytes: int,
        start_timeout_s: float,
        preload: tuple[str, ...] = (),
    ) -> None:
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
                json.dumps(list(preload)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        self.jobs = 0
        self.models: set[str] = set()
        """Keys of the layer-sum models this worker holds (it says so with every answer)."""
        ready = self._read_frame(time.monotonic() + start_timeout_s)
        if json.loads(ready) != {"ready": True}:
            self.kill()
            raise WorkerGone("a profiling worker did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_exact(
        self, size: int, deadline: float, up_to: int = 0, cancel: CallCancel | None = None
    ) -> bytes:
        """``size`` bytes at least (up to ``up_to`` if larger, when already written); looks at
        ``cancel`` every :data:`POLL_S` while it waits."""
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        parts: list[bytes] = []
        left = size
        most = max(size, up_to)
        while left > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            wait = remaining if cancel is None else min(remaining, POLL_S)
            readable, _, _ = select.select([fd], [], [], wait)
            if not readable:
                if cancel is not None and cancel.is_set():
                    raise CallerGone
                continue
            chunk = os.read(fd, min(most, 1 << 20))
            if not chunk:
                raise WorkerGone("the profiling worker exited")
            parts.append(chunk)
            left -= len(chunk)
            most -= len(chunk)
        return b"".join(parts)

    def _read_frame(self, deadline: float, cancel: CallCancel | None = None) -> bytes:
        """One answer: its header and, when the worker wrote them together (it does, and it
        writes nothing else until the next job), its payload in the same read."""
        first = self._read_exact(HEADER.size, deadline, up_to=1 << 16, cancel=cancel)
        (size,) = HEADER.unpack_from(first)
        payload = first[HEADER.size :]
        if len(payload) > size:
            raise WorkerGone("the profiling worker wrote past its answer")
        if len(payload) == size:
            return payload
        return payload + self._read_exact(size - len(payload), deadline, cancel=cancel)

    def _send(self, parts: list[bytes]) -> None:
        """The frame in one ``writev`` (the buffered pipe wrote the 8-byte header and the graph
        in two calls: each let go of the GIL and woke the worker, for about 40 µs of the
        server's CPU a job with 8 threads asking at once)."""
        fd = self.proc.stdin.fileno()  # type: ignore[union-attr]
        total = sum(len(p) for p in parts)
        frame = [HEADER.pack(total), *parts]
        sent = os.writev(fd, frame)
        if sent < total + HEADER.size:  # a signal cut a long write short
            rest = memoryview(b"".join(frame))[sent:]
            while rest:
                rest = rest[os.write(fd, rest) :]

    def ask(self, parts: list[bytes], deadline: float, cancel: CallCancel | None = None) -> dict:
        """Send one job (its payload in ``parts``) and wait for the answer until ``deadline``
        (monotonic seconds), or until ``cancel`` says nobody waits for it (CallerGone)."""
        try:
            self._send(parts)
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise WorkerGone("the profiling worker exited") from exc
        self.jobs += 1
        reply = json.loads(self._read_frame(deadline, cancel))
        if isinstance(reply, dict):
            self.models = set(reply.pop("models", None) or ())
        return reply

    def interrupt(self, wait_s: float) -> dict | None:
        """Stop the running job (:data:`server.profile_worker.INTERRUPT`) and read its answer
        (a ``Cancelled`` one, or the real one if the job had just finished); None when the
        worker does not answer within ``wait_s`` (then it must be killed)."""
        try:
            os.kill(self.pid, INTERRUPT)
            reply = json.loads(self._read_frame(time.monotonic() + wait_s))
        except (OSError, TimeoutError, WorkerGone, ValueError):
            return None
        if not isinstance(reply, dict):
            return None
        self.models = set(reply.pop("models", None) or ())
        return reply

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


LayerFiles = Callable[[], dict[str, bytes]]
"""The files of a layer-sum model (``LayerSum.to_files``), asked for only when a worker lacks
the model."""


class ProfilePool:
    """``workers`` processes that work on graphs; :meth:`profile` and :meth:`layer_sum` are
    thread-safe.

    ``deadline_s``: longest one profile may take (``layer_deadline_s``: one layer-sum job);
    ``memory_bytes``: each worker's address-space cap (``RLIMIT_AS``); ``recycle_rss_bytes``: a
    worker whose resident memory is above this after a job is replaced (a big graph must not
    keep its memory); ``wait_s``: longest a call waits for a free worker before
    RESOURCE_EXHAUSTED; ``light_bytes``: graphs up to this size may take any worker, larger
    ones all but one.
    """

    def __init__(
        self,
        limits: GraphLimits,
        *,
        workers: int | None = None,
        deadline_s: float = 4.0,
        layer_deadline_s: float = 8.0,
        memory_bytes: int = 1536 * MiB,
        recycle_rss_bytes: int = 512 * MiB,
        wait_s: float = 30.0,
        start_timeout_s: float = 60.0,
        light_bytes: int = 128 * 1024,
        preload: tuple[str, ...] = (),
    ) -> None:
        self.limits = limits
        self.size = workers or default_workers()
        self.deadline_s = deadline_s
        self.layer_deadline_s = layer_deadline_s
        self.memory_bytes = memory_bytes
        self.recycle_rss_bytes = recycle_rss_bytes
        self.wait_s = wait_s
        self.light_bytes = light_bytes
        self.preload = preload
        self.interrupted = 0
        """Jobs stopped with their worker kept (``replaced`` counts the workers killed)."""
        self._heavy = threading.BoundedSemaphore(max(1, self.size - 1))
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
                    worker = _Worker(
                        self.limits, self.memory_bytes, self._start_timeout_s, self.preload
                    )
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

    # -- jobs ------------------------------------------------------------------------------

    def profile(self, data: bytes, cancel: CallCancel | None = None) -> GraphProfile:
        """The profile of one graph, or the profiler's refusal; RESOURCE_EXHAUSTED past the
        deadline, the memory cap, or when no worker frees up within ``wait_s``; Cancelled
        when ``cancel`` says the caller went away."""
        reply = self._job([JOB_PROFILE, data], len(data), self.deadline_s, cancel, "profiling")
        return profile_from_json(reply)

    def layer_sum(
        self,
        data: bytes,
        model_key: str,
        files: LayerFiles,
        batch_size: int,
        cancel: CallCancel | None = None,
    ) -> dict:
        """The layer-sum answer for one forward pass of a graph on ``batch_size`` samples:
        ``energy_j``, ``low_j``, ``high_j``, ``duration_s``, ``warnings``, ``by_op_j`` (the
        largest operator types). The model goes to a worker once (by ``model_key``); the
        per-node records and their prediction never leave the worker."""

        def parts(worker: _Worker) -> list[bytes]:
            sent = {} if model_key in worker.models else files()
            header = json.dumps(
                {
                    "batch_size": batch_size,
                    "model": model_key,
                    "files": [[name, len(body)] for name, body in sent.items()],
                }
            ).encode()
            return [JOB_LAYER_SUM, LAYER_HEADER.pack(len(header)), header, *sent.values(), data]

        reply = self._job(parts, len(data), self.layer_deadline_s, cancel, "layer-sum")
        for name in ("energy_j", "low_j", "high_j", "duration_s"):
            if not isinstance(reply.get(name), int | float):
                raise ProfilerBug(f"layer-sum answer without {name}")
        return reply

    def _job(
        self,
        parts: list[bytes] | Callable[[_Worker], list[bytes]],
        graph_bytes: int,
        deadline_s: float,
        cancel: CallCancel | None,
        what: str,
    ) -> dict:
        """Run one job on a free worker and return its ``ok`` answer (or raise its error)."""
        if self._closed:
            raise FailedPrecondition("the server is shutting down")
        if graph_bytes > self.limits.max_bytes:
            raise ResourceLimit(
                f"graph is {graph_bytes} bytes; the limit is {self.limits.max_bytes} bytes"
            )
        heavy = graph_bytes > self.light_bytes
        worker = self._acquire(heavy, cancel)
        try:
            try:
                payload = parts(worker) if callable(parts) else parts
            except BaseException:
                self._idle.put(worker)
                raise
            started = time.monotonic()
            try:
                reply = worker.ask(payload, started + deadline_s, cancel)
            except TimeoutError:
                self._stop(worker, f"{what} ran past {deadline_s:g} s")
                raise ResourceLimit(
                    f"{what} of this graph took longer than {deadline_s:g} s; refused"
                ) from None
            except CallerGone:
                self._stop(worker, f"the caller of its {what} job went away")
                raise Cancelled(f"the call ended before its {what} did; stopped") from None
            except (WorkerGone, ValueError, OSError) as exc:
                code = worker.proc.poll()
                self._retire(worker, f"it ended mid-job ({exc}, exit {code})")
                raise ResourceLimit(
                    f"{what} of this graph exhausted a worker (memory or a crash); refused"
                ) from None
            self._release(worker, reply)
        finally:
            if heavy:
                self._heavy.release()
        if "ok" in reply:
            return reply["ok"]
        kind = reply.get("error", "Internal")
        message = str(reply.get("message", ""))
        if kind in _KINDS:
            raise _KINDS[kind](message)
        raise ProfilerBug(message)

    def _release(self, worker: _Worker, reply: object) -> None:
        """Back to the idle workers, unless the job left it above ``recycle_rss_bytes``."""
        rss = reply.pop("rss_bytes", None) if isinstance(reply, dict) else None
        if not isinstance(rss, int) or isinstance(rss, bool) or rss <= 0:
            rss = worker.rss_bytes()
        if rss > self.recycle_rss_bytes:
            self._retire(worker, f"resident memory above {self.recycle_rss_bytes >> 20} MiB")
        else:
            self._idle.put(worker)

    def _stop(self, worker: _Worker, why: str) -> None:
        """Stop a running job: interrupted, its worker goes back to work (imports and models
        kept, no new process to start); killed and replaced if it does not answer at once."""
        reply = worker.interrupt(STOP_WAIT_S)
        if reply is None:
            self._retire(worker, f"{why}; it did not stop within {STOP_WAIT_S:g} s")
            return
        logger.info("profiling worker %d stopped its job: %s", worker.pid, why)
        self.interrupted += 1
        self._release(worker, reply)

    def _acquire(self, heavy: bool, cancel: CallCancel | None) -> _Worker:
        """A free worker (for a heavy job, first one of the ``size - 1`` heavy places),
        waiting at most ``wait_s``; Cancelled as soon as the caller is gone."""
        end = time.monotonic() + self.wait_s

        def wait(take: Callable[[float], object]) -> object:
            while True:
                if cancel is not None:
                    cancel.check()
                left = end - time.monotonic()
                if left <= 0:
                    raise ResourceLimit(
                        f"every profiling worker stayed busy for {self.wait_s:g} s; try again"
                    )
                found = take(min(left, POLL_S) if cancel is not None else left)
                if found is not None:
                    return found

        def idle(timeout: float) -> _Worker | None:
            try:
                worker = self._idle.get(timeout=timeout)
            except queue.Empty:
                return None
            code = worker.proc.poll()
            if code is not None:
                # it died while idle (killed, OOM): the graph it would get is not to blame;
                # its replacement joins the idle ones when it has started
                self._retire(worker, f"it ended while idle (exit {code})")
                return None
            return worker

        if heavy:
            wait(lambda t: True if self._heavy.acquire(timeout=t) else None)
        try:
            return wait(idle)  # type: ignore[return-value]
        except BaseException:
            if heavy:
                self._heavy.release()
            raise
