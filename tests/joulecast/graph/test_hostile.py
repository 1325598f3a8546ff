"""Hostile uploads: each is refused with a typed error, and no file is ever opened."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import random
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from joulecast.errors import JoulecastError
from joulecast.graph import (
    ExternalDataRefused,
    GraphError,
    GraphLimits,
    GraphTooLarge,
    profile_graph,
)
from joulecast.protowire import encode_varint as _varint


@pytest.fixture
def no_file_access(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record (and refuse) every attempt to open a file while profiling; the test fails at
    teardown if there was one (the profiler turns any exception, this refusal's too, into a
    GraphError that a test expecting a refusal would accept)."""
    opened: list[str] = []

    def refuse(path: object, *args: object, **kwargs: object) -> None:
        opened.append(str(path))
        raise AssertionError(f"profiler opened {path!r}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    yield opened
    monkeypatch.undo()
    assert opened == [], f"the profiler tried to open {opened}"


def _model(
    nodes: list[onnx.NodeProto],
    initializers: list[TensorProto] = (),
    inputs: list[onnx.ValueInfoProto] | None = None,
    sparse: list[onnx.SparseTensorProto] = (),
) -> bytes:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])]
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=list(initializers),
        sparse_initializer=list(sparse),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def _external(name: str, location: str, dims: tuple[int, ...] = (4, 4)) -> TensorProto:
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    t.external_data.add(key="location", value=location)
    t.external_data.add(key="offset", value="0")
    t.external_data.add(key="length", value="64")
    return t


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\x00" * 64)
    return secret


def _locations(tmp_path: Path) -> dict[str, str]:
    secret = _secret(tmp_path)
    link = tmp_path / "link.bin"
    link.symlink_to(secret)
    return {
        "relative": "secret.bin",
        "traversal": "a/../../" + secret.name,
        "absolute": str(secret),
        "symlink": str(link),
    }


@pytest.mark.parametrize("kind", ["relative", "traversal", "absolute", "symlink"])
def test_external_initializer_refused(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = _locations(tmp_path)[kind]
    monkeypatch.chdir(tmp_path)
    data = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [_external("w", location)])
    opened: list[str] = []
    real_open = builtins.open

    def spy(path: object, *args: object, **kwargs: object) -> object:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    with pytest.raises(ExternalDataRefused, match="external data"):
        profile_graph(data)
    assert not any("secret" in p or "link" in p for p in opened)
    assert opened == []


def test_external_constant_attribute_refused(no_file_access: list[str]) -> None:
    const = helper.make_node("Constant", [], ["w"], value=_external("c", "/etc/passwd"))
    data = _model([const, helper.make_node("MatMul", ["x", "w"], ["y"])])
    with pytest.raises(ExternalDataRefused, match="/etc/passwd"):
        profile_graph(data)
    assert no_file_access == []


def test_external_sparse_initializer_refused(no_file_access: list[str]) -> None:
    values = _external("w", "../weights.bin", dims=(2,))
    indices = helper.make_tensor("w_idx", TensorProto.INT64, [2], [0, 5])
    sparse = helper.make_sparse_tensor(values, indices, [4, 4])
    data = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], sparse=[sparse])
    with pytest.raises(ExternalDataRefused):
        profile_graph(data)


def test_external_data_flag_without_location_refused(no_file_access: list[str]) -> None:
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    t.data_location = TensorProto.EXTERNAL
    data = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [t])
    with pytest.raises(ExternalDataRefused):
        profile_graph(data)


def test_external_data_in_subgraph_refused(no_file_access: list[str]) -> None:
    branch = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["b"])],
        "branch",
        [],
        [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)],
        initializer=[_external("w", "/etc/shadow")],
    )
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    with pytest.raises(ExternalDataRefused, match="/etc/shadow"):
        profile_graph(_model([node], inputs=[cond]))


@pytest.mark.parametrize("dim", [10**12, 2**31, 2**62])
def test_huge_declared_dims_refused(dim: int, no_file_access: list[str]) -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, dim])
    with pytest.raises(GraphTooLarge, match=str(dim)):
        profile_graph(_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w]))
    big_input = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, dim])]
    with pytest.raises(GraphTooLarge, match=str(dim)):
        profile_graph(_model([helper.make_node("Relu", ["x"], ["y"])], inputs=big_input))


def test_too_many_elements_refused() -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**30, 2**30, 4])
    with pytest.raises(GraphTooLarge, match="elements"):
        profile_graph(_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w]))


def test_negative_dims_refused(no_file_access: list[str]) -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, -5])
    with pytest.raises(GraphError, match="negative"):
        profile_graph(_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [w]))
    neg = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, -3])]
    with pytest.raises(GraphError, match="negative"):
        profile_graph(_model([helper.make_node("Relu", ["x"], ["y"])], inputs=neg))


def _nested_if(depth: int, loop: bool = False) -> bytes:
    body = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["inner"])],
        "leaf",
        [],
        [helper.make_tensor_value_info("inner", TensorProto.FLOAT, None)],
    )
    leaf = body
    for level in range(depth):
        out = f"o{level}"
        if loop:
            node = helper.make_node("Loop", ["", ""], [out], body=body)
        else:
            node = helper.make_node("If", ["c"], [out], then_branch=body, else_branch=leaf)
        body = helper.make_graph(
            [node],
            f"level{level}",
            [],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        )
    top = list(body.node)
    top[0].output[0] = "y"
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
        helper.make_tensor_value_info("c", TensorProto.BOOL, []),
    ]
    return _model(top, inputs=inputs)


@pytest.mark.parametrize("loop", [False, True], ids=["if", "loop"])
def test_deep_nesting_refused(loop: bool, no_file_access: list[str]) -> None:
    with pytest.raises(GraphTooLarge, match="nesting"):
        profile_graph(_nested_if(12, loop=loop))


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _hand_encoded_nesting(depth: int) -> bytes:
    """A model whose If nodes nest ``depth`` deep, encoded by hand: python protobuf cannot
    even build such a message (its decoder stops at ~100 levels)."""
    graph = _field(1, _field(4, b"Relu") + _field(1, b"x") + _field(2, b"y"))
    for _ in range(depth):
        attribute = _field(1, b"then_branch") + _field(6, graph) + _varint(20 << 3) + _varint(5)
        graph = _field(
            1, _field(4, b"If") + _field(1, b"c") + _field(2, b"y") + _field(5, attribute)
        )
    opset = _field(8, _field(1, b"") + _varint(2 << 3) + _varint(17))
    return _varint(1 << 3) + _varint(8) + _field(7, graph) + opset


def test_very_deep_nesting_refused_without_crash() -> None:
    # Deeper than protobuf's own recursion limit: refused at decoding, never a crash.
    with pytest.raises(GraphError, match="protobuf"):
        profile_graph(_hand_encoded_nesting(5000))
    with pytest.raises(GraphTooLarge, match="nesting"):
        profile_graph(_hand_encoded_nesting(20))


def test_shallow_control_flow_is_profiled_with_a_warning() -> None:
    profile = profile_graph(_nested_if(2))
    assert profile.family == "other"
    assert any("control flow" in w for w in profile.warnings)


def test_empty_bytes_refused() -> None:
    with pytest.raises(GraphError, match="empty"):
        profile_graph(b"")


def test_not_bytes_refused() -> None:
    with pytest.raises(GraphError, match="bytes"):
        profile_graph("model.onnx")  # type: ignore[arg-type]


def test_too_many_bytes_refused() -> None:
    data = _model([helper.make_node("Relu", ["x"], ["y"])])
    with pytest.raises(GraphTooLarge, match="bytes"):
        profile_graph(data, GraphLimits(max_bytes=len(data) - 1))


def _valid_model() -> bytes:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 8])
    w.raw_data = b"\x00" * 128
    return _model(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], [w]
    )


def test_truncated_bytes_refused(no_file_access: list[str]) -> None:
    data = _valid_model()
    with pytest.raises(GraphError):
        profile_graph(data[: len(data) // 2])
    for cut in range(1, len(data), 7):
        with contextlib.suppress(JoulecastError):  # a typed refusal; anything else fails
            profile_graph(data[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    with contextlib.suppress(JoulecastError):
        profile_graph(data)


def test_mutated_model_never_crashes() -> None:
    data = bytearray(_valid_model())
    rng = random.Random(4)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        with contextlib.suppress(JoulecastError):
            profile_graph(bytes(mutated))


def test_100k_nodes_refused(no_file_access: list[str]) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    nodes += [helper.make_node("Relu", [f"v{i}"], [f"v{i + 1}"]) for i in range(100_000)]
    data = _model(nodes)
    with pytest.raises(GraphTooLarge, match="nodes"):
        profile_graph(data)


def test_unknown_op_counts_zero_with_warning() -> None:
    data = _model(
        [
            helper.make_node("Relu", ["x"], ["h"]),
            helper.make_node("FancyOp", ["h"], ["y"], domain="acme"),
        ]
    )
    profile = profile_graph(data)
    assert profile.flops_forward == 4
    assert any("acme::FancyOp" in w for w in profile.warnings)
