"""The wire-format strip gives the bytes that parse-strip-serialise gives, without parsing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from collector.models import INPUT_SHAPE, ModelConfig, build_model
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_graph
from joulecast.onnx_wire import strip_file, strip_serialized
from joulecast.protowire import encode_varint as _encode_varint
from joulecast.weightless import WEIGHTLESS_KEY, is_weightless, strip_model

X = torch.zeros(1, *INPUT_SHAPE)


def _export(model: nn.Module, path: Path) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (X,), str(path), dynamo=False, input_names=["x"], opset_version=17
        )
    return path.read_bytes()


def _in_memory(data: bytes) -> bytes:
    return strip_model(onnx.load_model_from_string(data)).SerializeToString()


class WithConstants(nn.Module):
    """Big and small Constant nodes (a folded table and a reshape target) and a GRU."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(128, 16, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.squeeze(1).transpose(1, 2) + torch.arange(128.0)
        out, _ = self.gru(seq)
        return out.reshape(out.shape[0], -1)


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn", "crnn", "constants"])
def test_wire_strip_equals_parse_strip_serialise(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    configs = {
        "mlp": ModelConfig("mlp", (2,), (256,)),
        "cnn": ModelConfig("cnn", (2,), (16,)),
        "rnn": ModelConfig("rnn", (2,), (64,)),
        "crnn": ModelConfig("crnn", (2, 1), (16, 32)),
    }
    model = WithConstants() if name == "constants" else build_model(configs[name])
    full = _export(model, tmp_path / "m.onnx")
    wire = strip_serialized(full)
    assert wire == _in_memory(full)
    assert strip_file(tmp_path / "m.onnx") == wire
    assert len(wire) < len(full) / 5
    assert is_weightless(onnx.load_model_from_string(wire))
    assert profile_graph(wire) == profile_graph(full)


def _handmade() -> onnx.ModelProto:
    big = numpy_helper.from_array(np.ones((64, 64), np.float32), "w")
    small = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    const = helper.make_node(
        "Constant", [], ["c"], value=numpy_helper.from_array(np.ones((100,), np.float32))
    )
    nodes = [
        const,
        helper.make_node("MatMul", ["x", "w"], ["y"]),
        helper.make_node("Reshape", ["y", "shape"], ["z"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 64])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 64])],
        [big, small],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.add(key="author", value="me")
    return model


def test_handmade_model_with_metadata_and_constants() -> None:
    model = _handmade()
    full = model.SerializeToString()
    wire = strip_serialized(full)
    assert wire == _in_memory(full)
    stripped = onnx.load_model_from_string(wire)
    by_name = {t.name: t for t in stripped.graph.initializer}
    assert not by_name["w"].raw_data and list(by_name["w"].dims) == [64, 64]
    assert numpy_helper.to_array(by_name["shape"]).tolist() == [1, -1]  # kept: shape constant
    assert not stripped.graph.node[0].attribute[0].t.raw_data  # big Constant dropped
    assert [(p.key, p.value) for p in stripped.metadata_props] == [
        ("author", "me"),
        (WEIGHTLESS_KEY, "1"),
    ]
    assert strip_serialized(wire) == wire  # idempotent: marked once


def test_external_data_references_are_dropped_and_never_read(tmp_path: Path) -> None:
    model = _handmade()
    onnx.save_model(
        model,
        str(tmp_path / "m.onnx"),
        save_as_external_data=True,
        location="w.bin",
        size_threshold=0,
    )
    (tmp_path / "w.bin").unlink()
    stripped = onnx.load_model_from_string(strip_file(tmp_path / "m.onnx"))
    for t in stripped.graph.initializer:
        assert not t.external_data and t.data_location == TensorProto.DEFAULT


@pytest.mark.parametrize(
    "data",
    [b"\xff\xff\xff", b"\x08", b"\x3a\x05abc", b"hello world", b"\x0b\x0c", b"\x08\x01"],
    ids=["overlong", "truncated-varint", "short-length", "text", "group", "no-graph"],
)
def test_malformed_bytes_are_refused(data: bytes, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not an ONNX model"):
        strip_serialized(data)
    (tmp_path / "bad.onnx").write_bytes(data)
    with pytest.raises(InvalidArgument, match="not an ONNX model"):
        strip_file(tmp_path / "bad.onnx")


def test_unreadable_paths_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.onnx").write_bytes(b"")
    for path, needle in [
        (tmp_path / "missing.onnx", "no such file"),
        (tmp_path, "is a directory"),
        (tmp_path / "empty.onnx", "is empty"),
    ]:
        with pytest.raises(InvalidArgument, match=needle):
            strip_file(path)


def _field(number: int, body: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(body)) + body


def test_nesting_is_bounded() -> None:
    graph = b""
    for _ in range(30):  # a graph in an attribute of a node of a graph ... (90 levels)
        graph = _field(1, _field(5, _field(6, graph)))  # graph.node.attribute.g
    with pytest.raises(InvalidArgument, match="nested deeper"):
        strip_serialized(_field(7, graph))
