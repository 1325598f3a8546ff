"""Bounded profiling: every graph that could make the profiler loop, allocate or
overflow is refused with a typed error before the work, and what it returns stays small."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from joulecast.bounded import MAX_WARNING_CHARS, MAX_WARNINGS, bounded_warnings
from joulecast.errors import InvalidArgument, ResourceLimit
from joulecast.graph import GraphError, GraphLimits, GraphTooLarge, profile_graph

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hardening"))
import hostile_corpus

CASES = hostile_corpus.profiler_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_profiler_hostile_case(case: hostile_corpus.Case) -> None:
    if case.code == hostile_corpus.OK:
        profile = profile_graph(case.graph)
        assert any(case.needle in w for w in profile.warnings)
        return
    expected = GraphTooLarge if case.code == hostile_corpus.EXHAUSTED else GraphError
    with pytest.raises(expected) as info:
        profile_graph(case.graph)
    assert case.needle.lower() in str(info.value).lower()
    # The server maps these base classes to RESOURCE_EXHAUSTED / INVALID_ARGUMENT.
    base = ResourceLimit if case.code == hostile_corpus.EXHAUSTED else InvalidArgument
    assert isinstance(info.value, base)


def test_function_expansion_counts_against_the_node_limit() -> None:
    """2^k nodes once expanded: k=3 (8 nodes) passes a limit of 8, fails a limit of 7."""
    graph = hostile_corpus.function_bomb(3, ("a", "b"))
    profile = profile_graph(graph, GraphLimits(max_nodes=8))
    assert profile.node_count == 1
    with pytest.raises(GraphTooLarge, match="local functions"):
        profile_graph(graph, GraphLimits(max_nodes=7))


def test_concat_doubling_is_refused_at_any_depth() -> None:
    for k in (13, 22, 40):
        with pytest.raises(GraphTooLarge, match="shape-value propagation"):
            profile_graph(hostile_corpus._concat_doubling(k))
    # Fewer doublings pass propagation; the 32-dim tensor it shapes is then too large.
    with pytest.raises(GraphTooLarge, match="elements"):
        profile_graph(hostile_corpus._concat_doubling(4))


def test_250k_symbolic_dims_give_one_short_warning() -> None:
    profile = profile_graph(hostile_corpus._symbolic_dims(250_000))
    assert len(profile.warnings) == 1
    assert "250000 symbolic input dim(s) assumed 1" in profile.warnings[0]
    assert sum(len(w) for w in profile.warnings) < 1000


def test_warnings_are_capped() -> None:
    """A graph with many distinct unknown ops still returns at most 20 short warnings (the
    bound every transport applies, so a local answer says what the server says)."""
    nodes, prev = [], "x"
    for i in range(300):
        nodes.append(helper.make_node(f"Op{i}", [prev], [f"h{i}"], domain="custom"))
        prev = f"h{i}"
    nodes.append(helper.make_node("Relu", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)]
    )
    profile = profile_graph(model.SerializeToString())
    assert len(profile.warnings) == MAX_WARNINGS
    assert profile.warnings[-1].startswith("... and ")
    assert all(len(w) <= MAX_WARNING_CHARS for w in profile.warnings)
    assert bounded_warnings(profile.warnings) == profile.warnings  # bounding again changes nothing


def test_flop_ceiling_is_a_limit() -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[512, 512])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 512])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert profile_graph(data).flops_forward == 2 * 512 * 512
    with pytest.raises(GraphTooLarge, match="ceiling"):
        profile_graph(data, GraphLimits(max_flops=2**20))


def test_valid_groups_and_pads_still_profile() -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8, 2, 3, 3])
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], group=2, pads=[1, 1, 1, 1])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert profile_graph(data).flops_forward == 2 * (8 * 2 * 3 * 3) * 16 * 16


def test_unknown_shapes_name_the_nodes() -> None:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    graph = helper.make_graph(
        [
            helper.make_node("Mystery", ["x"], ["h"], domain="custom", name="mystery"),
            helper.make_node("MatMul", ["h", "w"], ["y"], name="mm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[w],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)]
    )
    profile = profile_graph(model.SerializeToString())
    unknown = [w for w in profile.warnings if "unknown output shapes" in w]
    assert unknown and "mystery" in unknown[0] and "mm" in unknown[0]


def test_declared_value_info_is_not_trusted_over_inference() -> None:
    """A lying value_info cannot change the count: our inference comes first."""
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        initializer=[w],
        value_info=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [10**6, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert profile_graph(model.SerializeToString()).flops_forward == 2 * 4 * 4
    assert onnx.checker is not None


def test_a_long_warning_is_cut_to_the_bound_once() -> None:
    long = "x" * (MAX_WARNING_CHARS + 50)
    once = bounded_warnings([long, "short"])
    assert once == ("x" * (MAX_WARNING_CHARS - 3) + "...", "short")
    assert bounded_warnings(once) == once
