"""Per-node features of the layer-sum model, from :class:`~joulecast.graph.NodeRecord`.

Every feature describes one node run forward on a whole batch of ``batch_size`` samples (the
records are per sample): FLOPs, activation bytes read and written, weight bytes, kernel, stride,
channels, output positions and batch size, mostly in log space so that one model spans six
orders of magnitude of energy per forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from joulecast.graph import NodeRecord

MODEL_OPS: dict[str, str] = {
    "Conv": "Conv",
    "Gemm": "Gemm",
    "MatMul": "Gemm",
    "MaxPool": "MaxPool",
}
"""ONNX op -> the measured operator type whose model predicts it (a Linear exports as Gemm,
or as MatMul + Add)."""
FREE_OPS = frozenset(
    """Reshape Flatten Squeeze Unsqueeze Identity Dropout Shape Size Constant ConstantOfShape
    Cast CastLike Range""".split()  # noqa: SIM905
)
"""Ops that only relabel a tensor (or are no-ops in inference): costed 0 J."""
BASE_COLUMNS = (
    "one",
    "log_flops",
    "log_in",
    "log_out",
    "log_weight",
    "log_batch",
    "log_k",
    "log_s",
)
"""Inputs of the log-linear base model (extrapolates smoothly beyond the data)."""
TREE_COLUMNS = (
    "log_flops",
    "log_in",
    "log_out",
    "log_weight",
    "kernel",
    "stride",
    "log_batch",
    "log_intensity",
    "log_c_in",
    "log_c_out",
    "log_positions",
    "c_in_mod16",
    "c_out_mod16",
)
"""Inputs of the boosted correction (flat outside the data: it cannot run away)."""
CHANNEL_BLOCK = 16
"""Channels per block in oneDNN's convolution layouts on AVX-512 (the Xeon Gold 5120 of the
Getzner rows, and the project's EPYC VM): a convolution runs on its channels rounded up to whole
blocks, so 65 channels cost what 80 do. Measured on the VM (3x3 convolutions, 40-136 channels
in and out, 28x28, one thread): CPU time per true MAC follows ceil16(c)^2 / c^2 with slope
1.00 in log space, a sawtooth that drops at every multiple of 16."""
OP_COLUMNS: dict[str, tuple[str, ...]] = {"Conv": ("log_pad16",)}
"""Inputs an operator's model adds to both lists: a convolution's channel padding."""


def base_columns(op: str) -> tuple[str, ...]:
    return BASE_COLUMNS + OP_COLUMNS.get(op, ())


def tree_columns(op: str) -> tuple[str, ...]:
    return TREE_COLUMNS + OP_COLUMNS.get(op, ())


def _log(value: float) -> float:
    return math.log(max(float(value), 1.0))


def _channels(shape: tuple[int, ...]) -> int:
    return int(shape[1]) if len(shape) >= 2 else (int(shape[0]) if shape else 1)


def _log_pad(channels: float) -> float:
    """log(channels rounded up to whole blocks / channels): 0 for a multiple of the block."""
    c = max(float(channels), 1.0)
    return math.log(math.ceil(c / CHANNEL_BLOCK) * CHANNEL_BLOCK / c)


def node_features(node: NodeRecord, batch_size: int) -> dict[str, float]:
    """The features of ``node`` run forward on ``batch_size`` samples."""
    flops = node.flops * batch_size
    in_b, out_b = node.input_bytes * batch_size, node.output_bytes * batch_size
    positions = math.prod(node.output_shape[2:]) if len(node.output_shape) > 2 else 1
    c_in, c_out = _channels(node.input_shape), _channels(node.output_shape)
    return {
        "one": 1.0,
        "log_flops": _log(flops),
        "log_in": _log(in_b),
        "log_out": _log(out_b),
        "log_weight": _log(node.weight_bytes + 1),
        "log_batch": _log(batch_size),
        "log_k": _log(node.kernel + 1),
        "log_s": _log(node.stride + 1),
        "kernel": float(node.kernel),
        "stride": float(node.stride),
        "log_intensity": _log(flops) - _log(in_b + out_b + node.weight_bytes),
        "log_c_in": _log(c_in),
        "log_c_out": _log(c_out),
        "log_positions": _log(positions),
        "c_in_mod16": float(c_in % 16),
        "c_out_mod16": float(c_out % 16),
        "log_pad16": _log_pad(c_in) + _log_pad(c_out),
        "bytes_moved": float(in_b + out_b),
    }


def feature_table(nodes: Sequence[NodeRecord], batch_size: int) -> dict[str, np.ndarray]:
    """:func:`node_features` of every node at once: one array per feature, a row per node.

    The same numbers as calling :func:`node_features` node by node (a test holds them equal);
    one pass in Python pulls each node's integers out, the arithmetic runs in numpy, so that a
    graph of 49,000 nodes costs tens of milliseconds, not a dict per node."""
    n = len(nodes)
    ints = np.empty((n, 9), dtype=np.float64)
    for i, node in enumerate(nodes):
        out_shape, in_shape = node.output_shape, node.input_shape
        ints[i] = (
            node.flops,
            node.input_bytes,
            node.output_bytes,
            node.weight_bytes,
            node.kernel,
            node.stride,
            math.prod(out_shape[2:]) if len(out_shape) > 2 else 1,
            _channels(in_shape),
            _channels(out_shape),
        )
    flops_1, in_1, out_1, weight, kernel, stride, positions, c_in, c_out = ints.T
    batch = float(batch_size)
    flops, in_b, out_b = flops_1 * batch, in_1 * batch, out_1 * batch

    def log(values: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(values, 1.0))

    def log_pad(channels: np.ndarray) -> np.ndarray:
        c = np.maximum(channels, 1.0)
        return np.log(np.ceil(c / CHANNEL_BLOCK) * CHANNEL_BLOCK / c)

    return {
        "one": np.ones(n),
        "log_flops": log(flops),
        "log_in": log(in_b),
        "log_out": log(out_b),
        "log_weight": log(weight + 1),
        "log_batch": np.full(n, _log(batch_size)),
        "log_k": log(kernel + 1),
        "log_s": log(stride + 1),
        "kernel": kernel,
        "stride": stride,
        "log_intensity": log(flops) - log(in_b + out_b + weight),
        "log_c_in": log(c_in),
        "log_c_out": log(c_out),
        "log_positions": log(positions),
        "c_in_mod16": np.mod(c_in, 16),
        "c_out_mod16": np.mod(c_out, 16),
        "log_pad16": log_pad(c_in) + log_pad(c_out),
        "bytes_moved": in_b + out_b,
    }


def table_matrix(table: dict[str, np.ndarray], columns: tuple[str, ...]) -> np.ndarray:
    """The rows of ``table`` as a matrix of ``columns``."""
    return np.column_stack([table[c] for c in columns])


def matrix(rows: list[dict[str, float]], columns: tuple[str, ...]) -> np.ndarray:
    return np.array([[r[c] for c in columns] for r in rows], float).reshape(len(rows), -1)
