"""Profiling time: joulecast's graph profiler vs onnx-tool, side by side in one run.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_profiler.py [--repeat 3]``.

Graphs (all full, with weights, because onnx-tool needs them; joulecast profiles the very same
bytes): paper configurations of every family (legacy exporter, as the collector exports them),
a transformer encoder (``nn.TransformerEncoder``, 2 layers, d=192, 4 heads, 64 frames), and
chains of MatMul+Relu of 1,000 and 10,000 nodes. For each graph both tools run ``--repeat``
times in this process, interleaved, and the median counts (onnx-tool runs once when one run
takes over 5 s). Prints per graph: ms per tool, the ratio, joulecast's µs per node (wall and
CPU: on a shared machine the CPU time is the steadier figure), and the geometric mean ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import statistics
import time
import warnings
from collections.abc import Callable
from importlib import resources

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from collector.models import INPUT_SHAPE, ModelConfig, build_model
from joulecast.graph import profile_graph

PAPER_PICKS = (
    "mlp-n1-h512",
    "mlp-n4-h1024",
    "cnn-n1-h128",
    "cnn-n2-h256",
    "rnn-n1-h128",
    "rnn-n1-h512",
    "crnn-n1,1-h64,64",
    "crnn-n2,1-h64,64",
)


def _paper(config_id: str) -> ModelConfig:
    plan = json.loads(resources.files("collector").joinpath("plans/paper.json").read_text())
    for r in plan["runs"]:
        c = ModelConfig(
            r["family"], tuple(r["layers"]), tuple(r["hidden"]), r.get("rnn_input", "flat")
        )
        if c.config_id == config_id:
            return c
    raise SystemExit(f"{config_id} is not in plans/paper.json")


def _export(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (example,),
            buffer,
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            opset_version=17,
        )
    return buffer.getvalue()


class _Encoder(torch.nn.Module):
    """(batch, 1, 128 mels, 64 frames) -> 64 frames of 192 features -> 2 encoder layers."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(128, 192)
        layer = torch.nn.TransformerEncoderLayer(192, 4, 384, batch_first=True, dropout=0.0)
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.proj(x.squeeze(1).transpose(1, 2)))


def _chain(nodes: int, width: int = 16) -> bytes:
    """MatMul+Relu pairs with real (zero) weights of width x width."""
    graph_nodes, inits, prev = [], [], "x"
    for i in range(nodes // 2):
        inits.append(
            helper.make_tensor(
                f"w{i}", TensorProto.FLOAT, [width, width], bytes(4 * width * width), raw=True
            )
        )
        graph_nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        graph_nodes.append(helper.make_node("Relu", [f"m{i}"], [f"r{i}"]))
        prev = f"r{i}"
    graph = helper.make_graph(
        graph_nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def _graphs() -> list[tuple[str, bytes, tuple[int, ...]]]:
    x = torch.zeros(1, *INPUT_SHAPE)
    out = []
    for config_id in PAPER_PICKS:
        torch.manual_seed(0)
        out.append((config_id, _export(build_model(_paper(config_id)), x), (1, *INPUT_SHAPE)))
    torch.manual_seed(0)
    out.append(("transformer-encoder", _export(_Encoder(), x), (1, *INPUT_SHAPE)))
    out.append(("mlp-chain-1k", _chain(1_000), (1, 16)))
    out.append(("mlp-chain-10k", _chain(10_000), (1, 16)))
    return out


def _onnx_tool(data: bytes, shape: tuple[int, ...]) -> int:
    import onnx_tool

    model = onnx_tool.Model(onnx.load_model_from_string(data))
    model.graph.shape_infer({"x": np.zeros(shape, dtype=np.float32)})
    model.graph.profile()
    return int(2 * model.graph.macs[0])


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(
        f"{'graph':<22}{'nodes':>7}{'ours ms':>10}{'onnx-tool ms':>14}{'ratio':>8}"
        f"{'us/node':>9}{'cpu us/node':>13}{'FLOPs ours':>16}{'onnx-tool':>16}"
    )
    ratios = []
    for name, data, shape in _graphs():
        ours_wall, ours_cpu, tool_wall = [], [], []
        profile = tool_flops = None
        for i in range(args.repeat):
            w, c, profile = _timed(lambda data=data: profile_graph(data))
            ours_wall.append(w)
            ours_cpu.append(c)
            if i == 0 or tool_wall[-1] < 5.0:
                w, _c, tool_flops = _timed(lambda data=data, shape=shape: _onnx_tool(data, shape))
                tool_wall.append(w)
        ours, tool = statistics.median(ours_wall), statistics.median(tool_wall)
        n = profile.node_count
        ratios.append(tool / ours)
        print(
            f"{name:<22}{n:>7}{ours * 1e3:>10.2f}{tool * 1e3:>14.1f}{tool / ours:>8.1f}"
            f"{ours / n * 1e6:>9.1f}{statistics.median(ours_cpu) / n * 1e6:>13.1f}"
            f"{profile.flops_forward:>16,}{tool_flops:>16,}"
        )
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(
        f"\n{len(ratios)} graphs: joulecast is {geomean:.1f}x faster than onnx-tool "
        f"(geometric mean of per-graph ratios; goal >= 10x, <= 20 us/node at 10k nodes)"
    )


if __name__ == "__main__":
    main()
