"""Strip an ONNX model's weights by scanning its protobuf wire format: weights are never read.

Parsing a ModelProto materialises every tensor: a 550 MB VGG-16 file costs seconds and more
than a GB of memory before a single weight can be dropped. This module walks the serialised
bytes instead (a memory map of the file, or bytes already in memory), descends only into the
messages that can hold tensors (model, graph, node, attribute, function, training info, sparse
tensor), copies every other field as it is and skips the data fields of the tensors it drops.
The weight pages of a mapped file are never touched, so time and memory follow the size of
the graph, not of its weights.

The rules are those of :func:`joulecast.weightless.strip_tensor`, and the result is the same
serialisation as parsing, stripping and serialising (a test checks it byte for byte on real
exports): dropped tensors lose ``raw_data``, the typed ``*_data`` fields and ``external_data``
and get ``data_location = DEFAULT``; the model gets ``joulecast.weightless = "1"``.
"""

from __future__ import annotations

import mmap
import os
from contextlib import suppress
from pathlib import Path

from joulecast.errors import InvalidArgument
from joulecast.protowire import Malformed, encode_varint, fields, varint, varints

WEIGHTLESS_KEY = "joulecast.weightless"
KEEP_ELEMENTS = 64
"""Tensors with at most this many elements keep their data (shape constants, small biases)."""
MAX_NESTING = 64
"""Messages nested deeper than this are refused (graphs in attributes in graphs...)."""

# ONNX's TensorProto.DataType values of the floating-point types (stable in onnx.proto).
FLOAT_TYPES = frozenset({1, 10, 11, 16})  # FLOAT, FLOAT16, DOUBLE, BFLOAT16

# TensorProto fields (onnx.proto): data fields dropped with the data, and the external ones.
_T_DIMS, _T_DATA_TYPE, _T_EXTERNAL, _T_LOCATION = 1, 2, 13, 14
_T_DATA = frozenset({4, 5, 6, 7, 9, 10, 11})  # float, int32, string, int64, raw, double, uint64
_LOCATION_DEFAULT = b"\x70\x00"  # field 14, varint 0
_MODEL_METADATA = 14
_MODEL_GRAPH = 7

# Which fields of which message hold messages that may hold tensors; everything else is copied.
_CHILDREN: dict[str, dict[int, str]] = {
    "model": {_MODEL_GRAPH: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "parameter", 15: "sparse"},
    "node": {5: "attribute"},
    "function": {7: "node"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
}


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor(buf: memoryview, start: int, end: int, keep_elements: int, parameter: bool) -> bytes:
    dims: list[int] = []
    data_type = 0
    external = False
    for field, wire, _tag, payload, stop in fields(buf, start, end):
        if field == _T_DIMS and wire == 0:
            dims.append(_signed64(varint(buf, payload, stop)[0]))
        elif field == _T_DIMS and wire == 2:  # packed
            dims.extend(_signed64(value) for value in varints(buf, payload, stop))
        elif field == _T_DATA_TYPE and wire == 0:
            data_type = varint(buf, payload, stop)[0]
        elif field == _T_EXTERNAL:
            external = True
        elif field == _T_LOCATION and wire == 0:
            external = external or varint(buf, payload, stop)[0] == 1  # EXTERNAL
    numel = 1
    for d in dims:
        numel *= d
    dropped = external or (parameter and data_type in FLOAT_TYPES) or numel > keep_elements
    if not dropped:
        return bytes(buf[start:end])
    out: list[bytes] = []
    located = False
    for field, _wire, tag, _payload, stop in fields(buf, start, end):
        if field in _T_DATA or field in (_T_EXTERNAL, _T_LOCATION):
            continue
        if field > _T_LOCATION and not located:
            out.append(_LOCATION_DEFAULT)
            located = True
        out.append(bytes(buf[tag:stop]))
    if not located:
        out.append(_LOCATION_DEFAULT)
    return b"".join(out)


def _entry(key: str, value: str) -> bytes:
    """A serialised StringStringEntryProto as a ModelProto.metadata_props field."""
    k, v = key.encode(), value.encode()
    body = b"\x0a" + encode_varint(len(k)) + k + b"\x12" + encode_varint(len(v)) + v
    return bytes([_MODEL_METADATA << 3 | 2]) + encode_varint(len(body)) + body


def _entry_key(buf: memoryview, start: int, end: int) -> bytes | None:
    key = None
    for field, wire, _tag, payload, stop in fields(buf, start, end):
        if field == 1 and wire == 2:
            key = bytes(buf[payload:stop])
    return key


def _message(
    buf: memoryview, start: int, end: int, kind: str, keep_elements: int, depth: int
) -> bytes:
    if depth > MAX_NESTING:
        raise Malformed(f"messages nested deeper than {MAX_NESTING} levels")
    if kind in ("tensor", "parameter"):
        return _tensor(buf, start, end, keep_elements, parameter=kind == "parameter")
    children = _CHILDREN[kind]
    out: list[bytes] = []
    marked = kind != "model"
    has_graph = False
    for field, wire, tag, payload, stop in fields(buf, start, end):
        if kind == "model":
            has_graph = has_graph or (field == _MODEL_GRAPH and wire == 2)
            if field > _MODEL_METADATA and not marked:
                out.append(_entry(WEIGHTLESS_KEY, "1"))
                marked = True
            if (
                field == _MODEL_METADATA
                and wire == 2
                and _entry_key(buf, payload, stop) == WEIGHTLESS_KEY.encode()
            ):
                out.append(_entry(WEIGHTLESS_KEY, "1"))
                marked = True
                continue
        child = children.get(field) if wire == 2 else None
        if child is None:
            out.append(bytes(buf[tag:stop]))
            continue
        body = _message(buf, payload, stop, child, keep_elements, depth + 1)
        header_end = payload - len(encode_varint(stop - payload))
        out.append(bytes(buf[tag:header_end]))
        out.append(encode_varint(len(body)))
        out.append(body)
    if not marked:
        out.append(_entry(WEIGHTLESS_KEY, "1"))
    if kind == "model" and not has_graph:
        raise Malformed("no graph")
    return b"".join(out)


def _strip_view(view: memoryview, keep_elements: int, not_onnx: str) -> bytes:
    """Strip the model in ``view``, then release it; ``not_onnx`` starts the error message."""
    try:
        return _message(view, 0, len(view), "model", keep_elements, 0)
    except Malformed as exc:
        raise InvalidArgument(f"{not_onnx}: {exc}") from None
    finally:
        view.release()


def strip_serialized(
    data: bytes | bytearray | memoryview, keep_elements: int = KEEP_ELEMENTS
) -> bytes:
    """The weightless serialisation of serialised ONNX ``data`` (see the module docstring)."""
    return _strip_view(memoryview(data).cast("B"), keep_elements, "not an ONNX model")


def strip_file(path: str | os.PathLike[str], keep_elements: int = KEEP_ELEMENTS) -> bytes:
    """The weightless serialisation of the ONNX file at ``path``, read through a memory map:
    only the pages of the graph are read, never those of the weights. External data files are
    never opened (their references are dropped)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                raise InvalidArgument(f"{path} is empty, not an ONNX model")
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except FileNotFoundError as exc:
        raise InvalidArgument(f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise InvalidArgument(f"{path} is a directory, not an ONNX file") from exc
    except (OSError, ValueError) as exc:  # ValueError: a file mmap cannot map
        raise InvalidArgument(f"cannot read {path}: {exc}") from exc
    try:
        with suppress(AttributeError):  # not on every platform
            mapped.madvise(mmap.MADV_RANDOM)  # no read-ahead into the weights
        return _strip_view(memoryview(mapped), keep_elements, f"{path} is not an ONNX model")
    finally:
        with suppress(BufferError):  # a slice still alive in a traceback: GC closes it
            mapped.close()
