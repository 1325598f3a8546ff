"""The child side of :mod:`server.profiling`: jobs on graphs read from stdin, one at a time.

Run as ``python -m server.profile_worker LIMITS_JSON MEMORY_BYTES``. The worker caps its own
address space (``RLIMIT_AS``) once its imports are done, so that a graph whose profiling would
need gigabytes ends in a MemoryError here, never in the server. Frames on both pipes are an
8-byte big-endian length and a payload; a JSON answer comes out (never pickle: this process
reads hostile input). A job's payload starts with its kind:

- ``P`` + the graph: its :class:`~joulecast.graph.GraphProfile`;
- ``L`` + a 4-byte header length + a JSON header (batch size, model key, the model's files'
  names and sizes when this worker has not got it yet) + those files + the graph: the
  layer-sum answer for one forward pass (:meth:`estimator.layerwise.LayerSum.predict_nodes`
  on :func:`joulecast.graph.profile_nodes`). The model is kept by key for later jobs;
  xgboost is imported at the first such job.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import struct
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from joulecast.bounded import bounded_warnings

if TYPE_CHECKING:
    from joulecast.errors import JoulecastError

HEADER = struct.Struct(">Q")
LAYER_HEADER = struct.Struct(">I")
JOB_PROFILE = b"P"
JOB_LAYER_SUM = b"L"
MODELS_KEPT = 3
"""Layer-sum models a worker keeps (by key): the versions serving, and one being swapped in."""
MAX_BY_OP = 20
INT64_MAX = 2**63 - 1


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame, or None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return data


def write_frame(stream: BinaryIO, data: bytes) -> None:
    stream.write(HEADER.pack(len(data)) + data)
    stream.flush()


def error_classes() -> tuple[type[JoulecastError], ...]:
    """The errors a job's answer names by class (``{"error": name}``), in the order a raised
    error is matched against them; the server raises the same class again. Any other error is
    ``Internal``."""
    # loaded in the worker by its first failed job: workers start fast
    from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceLimit

    return (ResourceLimit, InvalidArgument, NotFound, FailedPrecondition)


def _error_kind(exc: BaseException) -> str:
    for cls in error_classes():
        if isinstance(exc, cls):
            return cls.__name__
    return "Internal"


def layer_job(
    header: dict[str, Any], files: dict[str, bytes], models: dict[str, Any]
) -> tuple[Any, int]:
    """(the layer-sum model a job names, its batch size): loaded from ``files`` when they came
    with the job, else kept from an earlier one."""
    key = str(header["model"])
    if files:
        # loaded in the worker by its first job of this kind: workers start fast
        from estimator.layerwise.model import LayerSum

        models.pop(key, None)
        models[key] = LayerSum.from_files(files)
        while len(models) > MODELS_KEPT:
            models.pop(next(iter(models)))
    if key not in models:
        raise KeyError(f"layer-sum model {key} was not sent to this worker")
    models[key] = models.pop(key)  # most recently used last
    return models[key], int(header["batch_size"])


def split_layer_job(payload: bytes) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """(header, model files, graph) of an ``L`` payload (after its kind byte)."""
    (size,) = LAYER_HEADER.unpack_from(payload)
    start = LAYER_HEADER.size
    header = json.loads(payload[start : start + size])
    at = start + size
    files: dict[str, bytes] = {}
    for name, length in header.get("files") or ():
        files[str(name)] = payload[at : at + int(length)]
        at += int(length)
    return header, files, payload[at:]


def _layer_sum(payload: bytes, limits: Any, models: dict[str, Any]) -> dict[str, Any]:
    # loaded in the worker by its first job of this kind: workers start fast
    from joulecast.graph import profile_nodes

    header, files, graph = split_layer_job(payload)
    model, batch_size = layer_job(header, files, models)
    found = model.predict_nodes(profile_nodes(graph, limits), batch_size)
    largest = sorted(found.by_op_j.items(), key=lambda kv: -kv[1])[:MAX_BY_OP]
    return {
        "energy_j": found.energy_j,
        "low_j": found.low_j,
        "high_j": found.high_j,
        "duration_s": found.duration_s,
        "warnings": list(bounded_warnings(found.warnings)),
        "by_op_j": dict(largest),
    }


def _profile(data: bytes, limits: Any) -> dict[str, Any]:
    # loaded in the worker by its first job of this kind: workers start fast
    from joulecast.graph import profile_graph

    profile = profile_graph(data, limits)
    out = profile.to_dict()
    out["warnings"] = list(bounded_warnings(profile.warnings))
    return out


def answer(
    data: bytes, limits: Any, memory_bytes: int, models: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON answer for one job: ``{"ok": ...}`` or ``{"error": kind, "message": ...}``."""
    # loaded in the worker by its first job of this kind: workers start fast
    from joulecast.errors import JoulecastError

    kind, payload = data[:1], data[1:]
    try:
        if kind == JOB_PROFILE:
            return {"ok": _profile(payload, limits)}
        if kind == JOB_LAYER_SUM:
            return {"ok": _layer_sum(payload, limits, {} if models is None else models)}
        return {"error": "Internal", "message": f"unknown job kind {kind!r}"}
    except MemoryError:
        return {
            "error": "ResourceLimit",
            "message": f"profiling this graph needs more than {memory_bytes >> 20} MiB; refused",
        }
    except RecursionError:
        return {"error": "InvalidArgument", "message": "graph nested too deeply to profile"}
    except JoulecastError as exc:
        return {"error": _error_kind(exc), "message": str(exc)[:2000]}
    except Exception as exc:  # a profiler bug: the parent logs it and answers INTERNAL
        return {"error": "Internal", "message": f"{type(exc).__name__}: {exc}"[:2000]}


def resident_bytes() -> int:
    """This process's resident memory (bytes), sent with each answer so that the server need
    not read ``/proc`` for it on every job; 0 when unknown."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _die_with_parent() -> None:
    """Exit when the server dies (kill -9 included), even in the middle of a long profile.

    (PR_SET_PDEATHSIG would fire when the *thread* that started the worker ends, not the
    server, so a watcher thread polls the parent id instead.)"""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class JobInterrupted(BaseException):
    """Raised into a running job by :data:`INTERRUPT` (a BaseException: no ``except Exception``
    of the code it interrupts swallows it)."""


INTERRUPT = signal.SIGUSR1
"""The signal by which the server stops this worker's job (its caller went away, or the job ran
past its deadline): the worker answers ``Cancelled`` and takes the next job, its imports and
models kept; only a worker that does not answer at once is killed."""
_IN_JOB = [False]


def _interrupt(signum: int, frame: object) -> None:
    if _IN_JOB[0]:  # a late signal, after the job's answer, is ignored
        raise JobInterrupted


def run_job(data: bytes, limits: Any, memory_bytes: int, models: dict[str, Any]) -> dict[str, Any]:
    """:func:`answer`, stoppable by :data:`INTERRUPT`."""
    try:
        _IN_JOB[0] = True
        return answer(data, limits, memory_bytes, models)
    except JobInterrupted:
        return {"error": "Cancelled", "message": "the job was stopped"}
    finally:
        _IN_JOB[0] = False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # loaded in the worker by its first job of this kind: workers start fast
    from joulecast.graph import GraphLimits

    _die_with_parent()
    signal.signal(INTERRUPT, _interrupt)
    limits = GraphLimits(**json.loads(argv[0]))
    memory_bytes = int(argv[1])
    for module in json.loads(argv[2]) if len(argv) > 2 else ():
        importlib.import_module(module)  # before the address cap, off the request path
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the answer pipe
    write_frame(stdout, b'{"ready": true}')
    models: dict[str, Any] = {}
    while True:
        data = read_frame(stdin)
        if data is None:
            return 0
        reply = run_job(data, limits, memory_bytes, models)
        del data
        reply["rss_bytes"] = resident_bytes()
        reply["models"] = list(models)
        try:
            encoded = json.dumps(reply).encode()
        except (ValueError, OverflowError) as exc:
            encoded = json.dumps({"error": "Internal", "message": str(exc)}).encode()
        write_frame(stdout, encoded)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
