"""Graphs the profiler must refuse or flag: an opset no ONNX release defines, a cycle, an
explicit dimension of 0; and what stays accepted: a slightly newer opset (with a warning),
nodes merely listed out of order (sorted, with a warning), symbolic dimensions (set to 1)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from joulecast.graph import GraphError, profile_graph, profile_nodes
from joulecast.graph.opset import NEWER_MARGIN, known_opset


def _mlp(opset: int = 17, order: tuple[int, ...] = (0, 1, 2), dims=("batch", 16)) -> bytes:
    nodes = [
        helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="act"),
        helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2", transB=1),
    ]
    graph = helper.make_graph(
        [nodes[i] for i in order],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[
            helper.make_tensor("w1", TensorProto.FLOAT, [32, 16], [0.0] * 512),
            helper.make_tensor("w2", TensorProto.FLOAT, [8, 32], [0.0] * 256),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return model.SerializeToString()


@pytest.mark.parametrize("opset", [0, 99, 10_000, known_opset() + NEWER_MARGIN + 1])
def test_an_opset_no_release_defines_is_refused(opset: int) -> None:
    with pytest.raises(GraphError, match=f"ONNX opset {opset} does not exist"):
        profile_graph(_mlp(opset))
    with pytest.raises(GraphError, match="does not exist"):
        profile_nodes(_mlp(opset))


def test_a_newer_real_opset_is_profiled_with_a_warning() -> None:
    newer = profile_graph(_mlp(known_opset() + 1))
    current = profile_graph(_mlp(known_opset()))
    assert newer.flops_forward == current.flops_forward > 0
    assert any("newer than this onnx" in w for w in newer.warnings)
    assert not any("opset" in w for w in current.warnings)


def test_another_domains_opset_is_its_own_business() -> None:
    model = onnx.load_model_from_string(_mlp())
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 99))
    assert profile_graph(model.SerializeToString()).flops_forward > 0


def _cyclic(self_loop: bool) -> bytes:
    if self_loop:
        nodes = [helper.make_node("Add", ["x", "y"], ["y"], name="loop")]
    else:
        nodes = [
            helper.make_node("Add", ["x", "b"], ["a"], name="first"),
            helper.make_node("Relu", ["a"], ["b"], name="second"),
            helper.make_node("Identity", ["b"], ["y"], name="out"),
        ]
    graph = helper.make_graph(
        nodes,
        "cycle",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("self_loop", [False, True])
def test_a_cycle_is_refused_naming_its_nodes(self_loop: bool) -> None:
    for profile in (profile_graph, profile_nodes):
        with pytest.raises(GraphError, match="the graph has a cycle") as caught:
            profile(_cyclic(self_loop))
        named = ("'loop'",) if self_loop else ("'first'", "'second'", "'out'")
        assert all(name in str(caught.value) for name in named), caught.value


def test_nodes_out_of_order_are_sorted_with_a_warning() -> None:
    sorted_profile = profile_graph(_mlp())
    shuffled = profile_graph(_mlp(order=(2, 0, 1)))
    assert shuffled.flops_forward == sorted_profile.flops_forward > 0
    assert shuffled.params == sorted_profile.params and shuffled.depth == sorted_profile.depth
    assert any("not in topological order" in w for w in shuffled.warnings)
    nodes = profile_nodes(_mlp(order=(2, 0, 1)))
    assert [n.name for n in nodes] == ["fc1", "act", "fc2"]


@pytest.mark.parametrize("dims", [(0, 16), (8, 0)])
def test_an_explicit_zero_dimension_is_not_taken_for_a_symbol(dims) -> None:
    axis = dims.index(0)
    with pytest.raises(GraphError, match=f"declares dimension 0 on axis {axis}"):
        profile_graph(_mlp(dims=dims))


def test_symbolic_dimensions_are_still_set_to_one() -> None:
    named = profile_graph(_mlp(dims=("batch", 16)))
    unnamed = profile_graph(_mlp(dims=(None, 16)))
    fixed = profile_graph(_mlp(dims=(1, 16)))
    assert named.flops_forward == unnamed.flops_forward == fixed.flops_forward > 0


@pytest.mark.parametrize("dims", [("batch", 12), ("batch", 32)])
def test_a_gemm_whose_inner_sizes_differ_is_refused(dims) -> None:
    """x [batch, 12] (or 32) against fc1's weight [32, 16] transposed: 12 (32) != 16, a product
    no runtime computes; priced as if it were, it was answered."""
    with pytest.raises(GraphError, match="Gemm 'fc1': inner dimensions"):
        profile_graph(_mlp(dims=dims))
    assert profile_graph(_mlp(dims=("batch", 16))).flops_forward > 0
