"""Opening a file to import: look at what it is before reading a byte, then read it bounded.

An import names files on the user's disk, but not every path names a file one may read to the
end: a FIFO blocks the reader forever, ``/dev/zero`` never ends, a sparse file claims
gigabytes, a line without a newline is read whole into memory, and a header of a million
columns makes a million-name error message. So every file an import reads (the import file,
the graphs it names, EC-NAS-Bench's JSON files) is opened here:

- it must be a regular file (checked on the opened descriptor too, so that a path swapped after
  the check is caught) no larger than the caller's limit;
- it is opened non-blocking, so that opening a FIFO returns at once instead of waiting for a
  writer;
- text is read line by line, each line at most :data:`MAX_LINE_CHARS`, the whole at most the
  limit, whatever the file grows to meanwhile;
- a CSV header has at most :data:`MAX_COLUMNS` columns, and every reason quoted from the file
  is cut to :data:`MAX_REASON_CHARS`.

Every refusal is an :class:`InvalidArgument` or :class:`ResourceLimit` of one line.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from joulecast.errors import InvalidArgument, ResourceLimit

MiB = 1 << 20
MAX_IMPORT_BYTES = 512 * MiB
"""Largest import file (CSV, JSONL, CodeCarbon CSV) read; the shipped imports weigh a few MB."""
MAX_JSON_BYTES = 64 * MiB
"""Largest JSON file of an EC-NAS-Bench folder read whole."""
MAX_LINE_CHARS = 1 * MiB
"""Longest line of an import file (a row of a few hundred characters is typical)."""
MAX_COLUMNS = 256
"""Most columns in a header (the import format has 39, CodeCarbon's emissions.csv about 40)."""
MAX_REASON_CHARS = 300
"""Longest text quoted from a file in a reason."""
MAX_NAMES_LISTED = 10

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def short(text: object, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def listed(names: list[str]) -> str:
    """The first few of ``names``, each cut short, and how many more there are."""
    shown = ", ".join(short(n, 40) for n in names[:MAX_NAMES_LISTED])
    more = len(names) - MAX_NAMES_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _what(mode: int) -> str | None:
    """None for a regular file, else what the file is."""
    if stat.S_ISREG(mode):
        return None
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a regular file"


def check_regular(path: Path, limit_bytes: int, what: str) -> int:
    """The size of ``path`` if it is a regular file of at most ``limit_bytes``; reads nothing.

    Symbolic links are followed: a link to ``/dev/zero`` is a character device."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InvalidArgument(f"no such {what}: {short(path)}") from None
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {short(path)}: {exc.strerror}") from None
    return _checked(info, path, limit_bytes, what)


def _checked(info: os.stat_result, path: Path, limit_bytes: int, what: str) -> int:
    kind = _what(info.st_mode)
    if kind is not None:
        raise InvalidArgument(f"{what} {short(path)} is {kind}, not a regular file")
    if info.st_size > limit_bytes:
        raise ResourceLimit(
            f"{what} {short(path)} is {info.st_size:,} bytes; the limit is {limit_bytes:,} bytes"
        )
    return info.st_size


@contextlib.contextmanager
def open_binary(path: Path, limit_bytes: int, what: str) -> Iterator[io.BufferedReader]:
    """``path`` opened for reading once it is known to be a regular file of at most
    ``limit_bytes`` (checked before opening and again on the descriptor)."""
    check_regular(path, limit_bytes, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {short(path)}: {exc.strerror}") from None
    try:
        _checked(os.fstat(fd), path, limit_bytes, what)
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def read_bytes(path: Path, limit_bytes: int, what: str) -> bytes:
    """The whole of a regular file of at most ``limit_bytes`` (never more, should it grow)."""
    with open_binary(path, limit_bytes, what) as fh:
        data = fh.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise ResourceLimit(f"{what} {short(path)} grew past {limit_bytes:,} bytes while read")
    return data


@contextlib.contextmanager
def open_lines(path: Path, what: str, limit_bytes: int = MAX_IMPORT_BYTES) -> Iterator[Lines]:
    """The text lines of ``path`` (UTF-8, a byte-order mark dropped), read bounded."""
    with open_binary(path, limit_bytes, what) as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8-sig", newline="")
        try:
            yield Lines(text, path, limit_bytes)
        finally:
            text.detach()


class Lines:
    """An iterator of lines (newlines kept, as ``csv`` wants them), each at most
    :data:`MAX_LINE_CHARS` characters and at most ``limit_chars`` in all."""

    def __init__(self, text: io.TextIOWrapper, path: Path, limit_chars: int) -> None:
        self._text = text
        self._path = path
        self._left = limit_chars
        self.number = 0

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> str:
        try:
            line = self._text.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError as exc:
            raise InvalidArgument(
                f"{short(self._path.name)} is not UTF-8 text (near line {self.number + 1}, byte "
                f"{exc.start} of the chunk read): export it as CSV or JSONL"
            ) from None
        if not line:
            raise StopIteration
        self.number += 1
        if len(line) > MAX_LINE_CHARS:
            raise ResourceLimit(
                f"{short(self._path.name)}: line {self.number} is longer than "
                f"{MAX_LINE_CHARS:,} characters"
            )
        self._left -= len(line)
        if self._left < 0:
            raise ResourceLimit(f"{short(self._path.name)} grew past its size limit while read")
        return line


def check_header(fieldnames: list[str] | None, path: Path) -> list[str]:
    """A CSV header of at most :data:`MAX_COLUMNS` columns (InvalidArgument when empty)."""
    if not fieldnames:
        raise InvalidArgument(f"{short(path)} is empty (a header line is needed)")
    if len(fieldnames) > MAX_COLUMNS:
        raise ResourceLimit(
            f"{short(path.name)}: the header has {len(fieldnames):,} columns; at most "
            f"{MAX_COLUMNS} are read"
        )
    return fieldnames
