"""The protobuf wire format, read field by field: the one low-level reader of the ONNX scanners.

:mod:`joulecast.onnx_wire` (strip every weight, for the client) and
:mod:`joulecast.graph.wire` (drop the data the profiler ignores, for the server) walk serialised
ModelProtos without parsing them; both read fields through :func:`fields` and write lengths
through :func:`encode_varint`.
"""

from __future__ import annotations

from collections.abc import Iterator


class Malformed(Exception):
    """The bytes are not a well-formed protobuf message (or hold more fields than allowed)."""


def varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """``(value, position after it)`` of the varint at ``pos``; it must end before ``end``."""
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Malformed("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    """The varint encoding of ``value`` (≥ 0)."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varints(buf: memoryview, start: int, end: int) -> Iterator[int]:
    """The values of a packed repeated varint field's payload."""
    pos = start
    while pos < end:
        value, pos = varint(buf, pos, end)
        yield value


def fields(
    buf: memoryview, start: int, end: int, limit: int | None = None
) -> Iterator[tuple[int, int, int, int, int]]:
    """``(field, wire_type, tag_start, payload_start, field_end)`` of each field of the message
    in ``buf[start:end]``. A length-delimited field's payload starts after its length. More
    than ``limit`` fields is :class:`Malformed` (a bound on the work a hostile input costs)."""
    pos = start
    count = 0
    while pos < end:
        tag_start = pos
        key, pos = varint(buf, pos, end)
        field, wire = key >> 3, key & 7
        count += 1
        if field == 0:
            raise Malformed("field number 0")
        if limit is not None and count > limit:
            raise Malformed(f"more than {limit} fields in one message")
        payload = pos
        if wire == 0:
            _, pos = varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, payload = varint(buf, pos, end)
            pos = payload + length
        elif wire == 5:
            pos += 4
        else:
            raise Malformed(f"wire type {wire} (groups and unknown types are not ONNX)")
        if pos > end:
            raise Malformed(f"field {field} runs past the end of its message")
        yield field, wire, tag_start, payload, pos


def tag_of(field: int, wire_type: int) -> int:
    """The key of a field (before its varint encoding)."""
    return field << 3 | wire_type
