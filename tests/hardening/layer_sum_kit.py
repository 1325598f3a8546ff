"""A small layer-sum bundle for tests, and graphs of many nodes (a module of its own, shared by
the hardening tests and the server benchmark).

The bundle is the hardening tests' fitted ``cpu-test`` predictor published again as
``cpu-layers`` with a layer-sum model fitted (30 boosting rounds) on synthetic single-layer rows
that obey a known law, so that the test phase of every graph is answered by summing its nodes,
as for the shipped ``xeon-gold-5120-2c``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from onnx import TensorProto, helper

from estimator.artifacts import load_current, publish
from estimator.layerwise import LayerSum
from estimator.layerwise.features import node_features
from joulecast.graph import NodeRecord

LAYER_HARDWARE = "cpu-layers"


def _gemm(n_in: int, n_out: int) -> NodeRecord:
    return NodeRecord(
        index=0, op_type="Gemm", name="fc", flops=2 * n_in * n_out, kind="matmul",
        input_bytes=4 * n_in, output_bytes=4 * n_out, weight_bytes=4 * n_in * n_out,
        kernel=0, stride=0, counted=True, input_shape=(1, n_in), output_shape=(1, n_out),
    )  # fmt: skip


def _pool(channels: int, side: int, kernel: int) -> NodeRecord:
    out = side // max(kernel, 1)
    return NodeRecord(
        index=0, op_type="MaxPool", name="pool", flops=channels * out * out * kernel * kernel,
        kind="other", input_bytes=4 * channels * side * side, output_bytes=4 * channels * out**2,
        weight_bytes=0, kernel=kernel, stride=kernel, counted=True,
        input_shape=(1, channels, side, side), output_shape=(1, channels, out, out),
    )  # fmt: skip


def layer_frame(seed: int = 0) -> pd.DataFrame:
    """Single-layer rows: energy = 0.01 J + 2 nJ per FLOP + 0.1 nJ per byte moved, 2 % noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(60):
        batch = int(rng.integers(1, 64))
        if n % 2:
            node = _gemm(int(rng.integers(8, 512)), int(rng.integers(8, 512)))
        else:
            node = _pool(
                int(rng.integers(4, 64)), int(rng.integers(8, 64)), int(rng.integers(1, 4))
            )
        features = node_features(node, batch)
        energy = 0.01 + 2e-9 * node.flops * batch + 1e-10 * features["bytes_moved"]
        for repeat in range(2):
            rows.append(
                {
                    "op_type": node.op_type,
                    "config_id": f"c{n}",
                    "batch_size": batch,
                    "energy_fp_j": energy * (1 + 0.02 * rng.standard_normal()),
                    "duration_fp_s": energy / 75.0,
                    "power_w": 75.0 + repeat,
                    "params": node.weight_bytes // 4,
                    "flops_fp": node.flops * batch,
                    **features,
                }
            )
    return pd.DataFrame(rows)


def publish_layer_bundle(artifacts: Path, source_hardware: str) -> str:
    """Publish ``cpu-layers`` into ``artifacts`` (beside ``source_hardware``); its version."""
    bundle = load_current(artifacts, source_hardware).bundle
    model = LayerSum(rounds=30, folds=3).fit(layer_frame())
    info = {"answers": ["test"], "why": "a test's synthetic single-layer rows"}
    layered = dataclasses.replace(
        bundle, hardware=LAYER_HARDWARE, layer_sum=model, layer_sum_info=info
    )
    return publish(layered, artifacts).version


def gemm_chain(n: int, width: int = 64) -> bytes:
    """A graph of ``n`` Gemm nodes in a chain (about 70 bytes a node, weightless)."""
    graph = helper.make_graph(
        [],
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(f"h{n - 1}", TensorProto.FLOAT, None)],
    )
    previous = "x"
    for i in range(n):
        node = graph.node.add()
        node.op_type, node.input[:], node.output[:] = "Gemm", [previous, f"w{i}"], [f"h{i}"]
        attr = node.attribute.add()
        attr.name, attr.type, attr.i = "transB", 2, 1  # AttributeProto.INT
        graph.initializer.add(name=f"w{i}", data_type=TensorProto.FLOAT, dims=[width, width])
        previous = f"h{i}"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()
