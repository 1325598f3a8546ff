"""When a call's work must stop: its client cancelled or went away, or its deadline passed.

The servicer makes one :class:`CallCancel` per call from its gRPC context and hands it down;
the profiling pool looks at it while it waits for a worker and while a worker works, and
kills (and replaces) the worker of a call nobody waits for any more. Before, eight clients
that gave up after 60 s left the server busy on their graphs for another 70 s.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from joulecast.errors import Cancelled


class _Context(Protocol):
    def time_remaining(self) -> float | None: ...

    def add_callback(self, callback: object) -> bool: ...


class CallCancel:
    """Set when the call ends before its work does (``cancel``), or past ``deadline``
    (monotonic seconds; None: none)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self._event = threading.Event()

    @classmethod
    def of(cls, context: _Context) -> CallCancel:
        """The cancellation of a gRPC call: its deadline, and the end of the call (gRPC runs
        the callback when the call terminates, a client's cancel or disconnect included)."""
        remaining = context.time_remaining()
        cancel = cls(None if remaining is None else time.monotonic() + remaining)
        if not context.add_callback(cancel.cancel):
            cancel.cancel()  # the call has already ended
        return cancel

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or (
            self.deadline is not None and time.monotonic() >= self.deadline
        )

    def check(self) -> None:
        """Cancelled when the call's work must stop."""
        if self.is_set():
            why = "its deadline passed" if self.deadline_passed() else "its client went away"
            raise Cancelled(f"the call was stopped: {why}")

    def deadline_passed(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline
