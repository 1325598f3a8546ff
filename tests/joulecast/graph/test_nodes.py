"""profile_nodes: the per-node records of the profiler, pinned so a rewrite keeps them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from collector.import_layers import build_descriptor
from joulecast.graph import GraphError, profile_graph, profile_nodes
from joulecast.weightless import export_weightless


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, 2, 1), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(8 * 7 * 7, 10),
    )  # fmt: skip


def test_nodes_add_up_to_the_graph_profile() -> None:
    graph = export_weightless(_cnn().eval(), torch.zeros(1, 3, 32, 32))
    nodes = profile_nodes(graph)
    profile = profile_graph(graph)
    assert [n.op_type for n in nodes] == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm"]
    assert len(nodes) == profile.node_count
    assert sum(n.flops for n in nodes) == profile.flops_forward
    assert sum(n.weight_bytes for n in nodes) == profile.weight_bytes
    assert all(n.counted for n in nodes)


def test_conv_node_record_is_pinned() -> None:
    graph = build_descriptor(
        "Conv2d(in_channels=80,out_channels=29,kernel_size=7,stride=1,padding=2,image_size=127)"
    )
    (node,) = profile_nodes(graph)
    assert (node.op_type, node.kind, node.kernel, node.stride) == ("Conv", "conv", 7, 1)
    assert node.flops == 3_552_953_125
    assert node.input_bytes == 80 * 127 * 127 * 4
    assert node.output_bytes == 29 * 125 * 125 * 4
    assert node.weight_bytes == (29 * 80 * 7 * 7 + 29) * 4
    assert node.input_shape == (1, 80, 127, 127) and node.output_shape == (1, 29, 125, 125)
    assert node.bytes_moved == node.input_bytes + node.output_bytes


def test_relu_and_pool_nodes_are_pinned() -> None:
    graph = export_weightless(_cnn().eval(), torch.zeros(1, 3, 32, 32))
    conv, relu, pool, flatten, gemm = profile_nodes(graph)
    assert relu.flops == relu.input_bytes // 4 == conv.output_bytes // 4 == 8 * 15 * 15
    assert relu.weight_bytes == 0 and relu.kernel == 0
    assert (pool.kernel, pool.stride, pool.output_shape) == (3, 2, (1, 8, 7, 7))
    assert flatten.flops == 0 and gemm.weight_bytes == (392 * 10 + 10) * 4


def test_a_fixed_batch_is_divided_out() -> None:
    dynamic = profile_nodes(export_weightless(_cnn().eval(), torch.zeros(1, 3, 32, 32)))
    model = _cnn().eval()
    fixed_bytes = _fixed_batch(model, 4)
    assert [n.flops for n in profile_nodes(fixed_bytes)] == [n.flops for n in dynamic]


def _fixed_batch(model: nn.Module, batch: int) -> bytes:
    import io

    import onnx

    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(batch, 3, 32, 32), buffer, dynamo=False)
    return onnx.load_from_string(buffer.getvalue()).SerializeToString()


def test_hostile_bytes_raise_the_profilers_error() -> None:
    with pytest.raises(GraphError):
        profile_nodes(b"\x00not an onnx graph")
