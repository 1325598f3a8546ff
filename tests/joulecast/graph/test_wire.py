"""Dropping weight bytes on the wire gives the very graph the profiler would have read."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from joulecast.graph import profile_graph
from joulecast.graph.wire import strip_data
from joulecast.weightless import strip_weights


def _full_model() -> bytes:
    """Big float weights (dropped), a big int64 table and a small Reshape target (kept)."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((512, 1024)).astype(np.float32), "w")
    table = numpy_helper.from_array(np.arange(4096, dtype=np.int64), "table")
    target = numpy_helper.from_array(np.array([1, 32, 32], dtype=np.int64), "target")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Reshape", ["h", "target"], ["r"]),
        helper.make_node("Relu", ["r"], ["y"]),
        helper.make_node("Gather", ["table", "idx"], ["g"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 512]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w, table, target],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_strip_keeps_headers_and_small_int_values() -> None:
    data = _full_model()
    stripped = strip_data(data)
    assert stripped is not None and len(stripped) < len(data) // 50
    model = onnx.ModelProto()
    model.ParseFromString(stripped)
    inits = {t.name: t for t in model.graph.initializer}
    assert list(inits["w"].dims) == [512, 1024] and not inits["w"].raw_data
    assert list(inits["table"].dims) == [4096] and not inits["table"].raw_data
    assert numpy_helper.to_array(inits["target"]).tolist() == [1, 32, 32]
    assert profile_graph(data) == profile_graph(strip_weights(data))


def test_small_malformed_or_weightless_input_is_left_alone() -> None:
    data = _full_model()
    assert strip_data(strip_weights(data)) is None  # nothing to drop
    assert strip_data(data[: len(data) // 2]) is None  # truncated: the parser reports it
    assert strip_data(b"\x00" * 2_000_000) is None
