"""The bookkeeping of named measurement windows that every meter does the same way."""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import TypeVar

from joulecast.errors import InvalidArgument

T = TypeVar("T")


def start_window(open_windows: Container[str], key: str, sync: Callable[[], None] | None) -> None:
    """What every meter does as a window begins: refuse a key already open, then ``sync`` so
    that work queued before the window is not counted in it."""
    if key in open_windows:
        raise InvalidArgument(f"window {key!r} is already open")
    if sync is not None:
        sync()


def pop_window(open_windows: dict[str, T], key: str) -> T:
    """The state a meter kept for open window ``key``, removed; refused if it was never opened."""
    if key not in open_windows:
        raise InvalidArgument(f"window {key!r} was never opened")
    return open_windows.pop(key)
