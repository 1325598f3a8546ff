"""Drop the bulk data of a full graph's initializers on the wire, before protobuf parses it.

Parsing copies every byte of every weight (tens of MB for a paper model) that the profiler
never reads: it needs each initializer's name, type and dims, and the values of small integer
tensors only. This walks the serialised ModelProto -> GraphProto -> TensorProto fields and
rebuilds the bytes without the data of tensors the profiler ignores (floating point, or more
than ``VALUE_ELEMENTS`` elements). Everything else is kept byte for byte, so validation sees
the same graph (external-data markers included). Any oddity in the wire format returns None
and the caller parses the original bytes, which then reports the problem.
"""

from __future__ import annotations

from joulecast.graph.ir import _FLOAT_PARAMS, VALUE_ELEMENTS

MIN_BYTES = 1 << 20
"""Below this size the scan costs more than it saves."""
_MIN_DATA = 512
"""A tensor's data fields shorter than this are kept (not worth re-encoding the tensor)."""
_SAMPLE, _MIN_AVERAGE = 32, 16 * 1024
"""After this many initializers averaging fewer bytes, the scan gives up."""
_MAX_FIELDS, _MAX_MODEL_FIELDS, _MAX_TENSOR_FIELDS = 120_000, 10_000, 10_000
"""More fields than this in a graph, model or tensor: not a graph worth scanning (the parser
decides); bounds the scan of a hostile upload to a fraction of a second."""
_GRAPH_FIELD, _INITIALIZER_FIELD = 7, 5
_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})


class _Malformed(Exception):
    pass


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _skip(buf: memoryview, pos: int, end: int, wire_type: int) -> int:
    if pos - 1 > end:
        raise _Malformed
    if wire_type == 0:
        return _varint(buf, pos, end)[1]
    if wire_type == 1:
        pos += 8
    elif wire_type == 2:
        n, pos = _varint(buf, pos, end)
        pos += n
    elif wire_type == 5:
        pos += 4
    else:
        raise _Malformed  # groups are not used by ONNX
    if pos > end:
        raise _Malformed
    return pos


def _strip_tensor(buf: memoryview, start: int, end: int) -> bytes | None:
    """The tensor without its data fields, or None to keep it as it is."""
    dims: list[int] = []
    data_type = 0
    data_bytes = 0
    keep: list[tuple[int, int]] = []
    pos = start
    fields = 0
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        fields += 1
        if field == 0 or fields > _MAX_TENSOR_FIELDS:
            raise _Malformed
        if field == 1 and wire_type == 0:
            d, pos = _varint(buf, pos, end)
            dims.append(d)
        elif field == 1 and wire_type == 2:
            n, pos = _varint(buf, pos, end)
            stop = pos + n
            while pos < stop:
                d, pos = _varint(buf, pos, stop)
                dims.append(d)
        elif field == 2 and wire_type == 0:
            data_type, pos = _varint(buf, pos, end)
        else:
            pos = _skip(buf, pos, end, wire_type)
        if field in _DATA_FIELDS:
            data_bytes += pos - field_start
        else:
            keep.append((field_start, pos))
    if pos != end or data_bytes < _MIN_DATA:
        return None
    numel = 1
    for d in dims:
        numel *= d
    if data_type not in _FLOAT_PARAMS and numel <= VALUE_ELEMENTS:
        return None
    return b"".join(buf[a:b] for a, b in keep)


def _strip_graph(buf: memoryview, start: int, end: int) -> bytes | None:
    pieces: list[bytes | memoryview] = []
    changed = False
    pos = start
    seen = seen_bytes = fields = 0
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        field, wire_type = key >> 3, key & 7
        fields += 1
        if field == 0 or fields > _MAX_FIELDS:
            raise _Malformed
        if field == _INITIALIZER_FIELD and wire_type == 2:
            n, body = _varint(buf, pos, end)
            pos = body + n
            if pos > end:
                raise _Malformed
            seen += 1
            seen_bytes += n
            if seen == _SAMPLE and seen_bytes < _SAMPLE * _MIN_AVERAGE:
                return None  # many small weights: parsing them is cheaper than this scan
            stripped = _strip_tensor(buf, body, pos)
            if stripped is not None:
                pieces.append(_encode_varint(key) + _encode_varint(len(stripped)) + stripped)
                changed = True
                continue
        else:
            pos = _skip(buf, pos, end, wire_type)
        pieces.append(buf[field_start:pos])
    if pos != end:
        raise _Malformed
    return b"".join(pieces) if changed else None


def strip_data(data: bytes) -> bytes | None:
    """``data`` without the initializer data the profiler ignores; None if nothing to drop
    (small input, already weightless) or the wire format is not what ONNX writes."""
    if len(data) < MIN_BYTES:
        return None
    buf = memoryview(data)
    end = len(buf)
    pieces: list[bytes | memoryview] = []
    changed = False
    pos = fields = 0
    try:
        while pos < end:
            field_start = pos
            key, pos = _varint(buf, pos, end)
            field, wire_type = key >> 3, key & 7
            fields += 1
            if field == 0 or fields > _MAX_MODEL_FIELDS:
                raise _Malformed
            if field == _GRAPH_FIELD and wire_type == 2:
                n, body = _varint(buf, pos, end)
                pos = body + n
                if pos > end:
                    raise _Malformed
                graph = _strip_graph(buf, body, pos)
                if graph is not None:
                    pieces.append(_encode_varint(key) + _encode_varint(len(graph)) + graph)
                    changed = True
                    continue
            else:
                pos = _skip(buf, pos, end, wire_type)
            pieces.append(buf[field_start:pos])
    except _Malformed:
        return None
    return b"".join(pieces) if changed else None
