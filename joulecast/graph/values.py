"""Which tensors of a graph the profiler reads the values of.

Shared by the reader of a parsed graph (:mod:`joulecast.graph.ir`) and the wire-level pass
that drops the other tensors' data before parsing (:mod:`joulecast.graph.wire`), so that the
two agree on what is kept without importing each other.
"""

from __future__ import annotations

import onnx

FLOAT_PARAMS = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)
"""Floating-point element types: weights, whose values the profiler never reads."""
VALUE_ELEMENTS = 64
"""Initializers and Constant tensors up to this many elements have their values read
(shape constants, Slice bounds, Resize scales); larger ones only their header."""
