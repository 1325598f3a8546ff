"""The child side of :mod:`server.profiling`: profile graphs read from stdin, one at a time.

Run as ``python -m server.profile_worker LIMITS_JSON MEMORY_BYTES``. The worker caps its own
address space (``RLIMIT_AS``) once its imports are done, so that a graph whose profiling would
need gigabytes ends in a MemoryError here, never in the server. Frames on both pipes are an
8-byte big-endian length and a payload: the graph's bytes in, a JSON answer out (never pickle:
this process reads hostile input).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
import threading
import time
from typing import Any, BinaryIO

HEADER = struct.Struct(">Q")
MAX_WARNINGS = 20
"""Warnings kept per profile (a graph with 250k symbolic dims must not yield a 30 MiB reply)."""
MAX_WARNING_CHARS = 300
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


def bounded_warnings(warnings: tuple[str, ...] | list[str]) -> list[str]:
    """At most :data:`MAX_WARNINGS` warnings of at most :data:`MAX_WARNING_CHARS` each."""
    kept = [
        w if len(w) <= MAX_WARNING_CHARS else w[: MAX_WARNING_CHARS - 3] + "..."
        for w in warnings[:MAX_WARNINGS]
    ]
    if len(warnings) > MAX_WARNINGS:
        kept.append(f"... and {len(warnings) - MAX_WARNINGS} more warnings")
    return kept


def _error_kind(exc: BaseException) -> str:
    from joulecast.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceLimit

    for cls in (ResourceLimit, InvalidArgument, NotFound, FailedPrecondition):
        if isinstance(exc, cls):
            return cls.__name__
    return "Internal"


def answer(data: bytes, limits: Any, memory_bytes: int) -> dict[str, Any]:
    """The JSON answer for one graph: ``{"ok": profile}`` or ``{"error": kind, "message": ...}``."""
    from joulecast.errors import JoulecastError
    from joulecast.graph import profile_graph

    try:
        profile = profile_graph(data, limits)
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
    out = profile.to_dict()
    out["warnings"] = bounded_warnings(profile.warnings)
    return {"ok": out}


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from joulecast.graph import GraphLimits

    _die_with_parent()
    limits = GraphLimits(**json.loads(argv[0]))
    memory_bytes = int(argv[1])
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the answer pipe
    write_frame(stdout, b'{"ready": true}')
    while True:
        data = read_frame(stdin)
        if data is None:
            return 0
        reply = answer(data, limits, memory_bytes)
        del data
        reply["rss_bytes"] = resident_bytes()
        try:
            encoded = json.dumps(reply).encode()
        except (ValueError, OverflowError) as exc:
            encoded = json.dumps({"error": "Internal", "message": str(exc)}).encode()
        write_frame(stdout, encoded)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
