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

from collections.abc import Callable

from joulecast.graph.values import FLOAT_PARAMS, VALUE_ELEMENTS
from joulecast.protowire import Malformed, encode_varint, fields, tag_of, varint, varints

MIN_BYTES = 1 << 20
"""Below this size the scan costs more than it saves."""
_MIN_DATA = 512
"""A tensor's data fields shorter than this are kept (not worth re-encoding the tensor)."""
_SAMPLE, _MIN_AVERAGE = 32, 16 * 1024
"""After this many initializers averaging fewer bytes, the scan gives up."""
_BYTES_PER_FIELD, _MIN_GRAPH_FIELDS = 4096, 1024
"""The scan of a graph gives up after one field per this many bytes of the model (at least
``_MIN_GRAPH_FIELDS``): scanning a field costs about what parsing 1.5 KB costs, so a graph of
many small nodes (which come before the initializers) wastes at most a third of a parse."""
_MAX_FIELDS, _MAX_MODEL_FIELDS, _MAX_TENSOR_FIELDS = 120_000, 10_000, 10_000
"""More fields than this in a graph, model or tensor: not a graph worth scanning (the parser
decides); bounds the scan of a hostile upload to a fraction of a second."""
_GRAPH_FIELD, _INITIALIZER_FIELD = 7, 5
_DATA_FIELDS = frozenset({4, 5, 6, 7, 9, 10, 11})


def _strip_tensor(buf: memoryview, start: int, end: int) -> bytes | None:
    """The tensor without its data fields, or None to keep it as it is."""
    dims: list[int] = []
    data_type = 0
    data_bytes = 0
    keep: list[tuple[int, int]] = []
    for field, wire_type, tag, payload, stop in fields(buf, start, end, _MAX_TENSOR_FIELDS):
        if field == 1 and wire_type == 0:
            dims.append(varint(buf, payload, stop)[0])
        elif field == 1 and wire_type == 2:
            dims.extend(varints(buf, payload, stop))
        elif field == 2 and wire_type == 0:
            data_type = varint(buf, payload, stop)[0]
        if field in _DATA_FIELDS:
            data_bytes += stop - tag
        else:
            keep.append((tag, stop))
    if data_bytes < _MIN_DATA:
        return None
    numel = 1
    for d in dims:
        numel *= d
    if data_type not in FLOAT_PARAMS and numel <= VALUE_ELEMENTS:
        return None
    return b"".join(buf[a:b] for a, b in keep)


def _rebuild(
    buf: memoryview,
    start: int,
    end: int,
    limit: int,
    target: int,
    strip: Callable[[int, int], bytes | None],
) -> bytes | None:
    """The message in ``buf[start:end]`` with each length-delimited field ``target`` replaced
    by ``strip(payload_start, field_end)`` where that is not None; None when nothing changed."""
    pieces: list[bytes | memoryview] = []
    changed = False
    for field, wire_type, tag, payload, stop in fields(buf, start, end, limit):
        if field == target and wire_type == 2:
            stripped = strip(payload, stop)
            if stripped is not None:
                pieces.append(encode_varint(tag_of(field, 2)) + encode_varint(len(stripped)))
                pieces.append(stripped)
                changed = True
                continue
        pieces.append(buf[tag:stop])
    return b"".join(pieces) if changed else None


class _FewLargeWeights(Exception):
    """Many small initializers: parsing them is cheaper than this scan."""


def _strip_graph(buf: memoryview, start: int, end: int, limit: int) -> bytes | None:
    seen = seen_bytes = 0

    def initializer(body: int, stop: int) -> bytes | None:
        nonlocal seen, seen_bytes
        seen += 1
        seen_bytes += stop - body
        if seen == _SAMPLE and seen_bytes < _SAMPLE * _MIN_AVERAGE:
            raise _FewLargeWeights
        return _strip_tensor(buf, body, stop)

    try:
        return _rebuild(buf, start, end, limit, _INITIALIZER_FIELD, initializer)
    except _FewLargeWeights:
        return None


def strip_data(data: bytes) -> bytes | None:
    """``data`` without the initializer data the profiler ignores; None if nothing to drop
    (small input, already weightless) or the wire format is not what ONNX writes."""
    if len(data) < MIN_BYTES:
        return None
    buf = memoryview(data)
    limit = min(_MAX_FIELDS, max(_MIN_GRAPH_FIELDS, len(data) // _BYTES_PER_FIELD))
    try:
        return _rebuild(
            buf,
            0,
            len(buf),
            _MAX_MODEL_FIELDS,
            _GRAPH_FIELD,
            lambda body, stop: _strip_graph(buf, body, stop, limit),
        )
    except Malformed:
        return None
