"""Profiling time: joulecast's graph profiler vs onnx-tool, side by side in one run.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_profiler.py [--repeat 3]``.

Graphs (all full, with weights, because onnx-tool needs them; joulecast profiles the very same
bytes): paper configurations of every family (legacy exporter, as the collector exports them),
a transformer encoder (``nn.TransformerEncoder``, 2 layers, d=192, 4 heads, 64 frames), and
chains of MatMul+Relu of 1,000 and 10,000 nodes. For each graph both tools run ``--repeat``
times or more (up to ``--budget`` seconds) in this process and the best run counts (one run
when it takes over 5 s). Prints per graph: best ms per tool, the wall and CPU-time ratios,
joulecast's µs per node (wall and CPU: on a shared machine the CPU time is the steadier
figure), FLOPs of both, and the geometric mean ratios.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
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


def _best(fn: Callable[[], object], repeat: int, budget_s: float) -> tuple[float, float, object]:
    """Best wall and best CPU seconds of at least ``repeat`` runs (more, up to ``budget_s``,
    for fast ones: on a shared machine the best of many is the figure that means something)."""
    walls, cpus, result = [], [], None
    spent = 0.0
    while len(walls) < repeat or (spent < budget_s and len(walls) < 50):
        wall, cpu, result = _timed(fn)
        walls.append(wall)
        cpus.append(cpu)
        spent += wall
        if wall > 5.0:
            break
    return min(walls), min(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per tool and graph")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs; "
        f"best of >= {args.repeat} runs per tool and graph"
    )
    print(
        f"{'graph':<22}{'nodes':>7}{'ours ms':>9}{'tool ms':>10}{'ratio':>8}{'cpu ratio':>10}"
        f"{'us/node':>9}{'cpu us/node':>12}{'FLOPs ours':>15}{'onnx-tool':>15}"
    )
    ratios, cpu_ratios = [], []
    per_node: dict[str, tuple[float, float]] = {}
    for name, data, shape in _graphs():
        ours, ours_cpu, profile = _best(
            lambda data=data: profile_graph(data), args.repeat, args.budget
        )
        tool, tool_cpu, tool_flops = _best(
            lambda data=data, shape=shape: _onnx_tool(data, shape), args.repeat, args.budget
        )
        n = profile.node_count
        per_node[name] = (ours / n * 1e6, ours_cpu / n * 1e6)
        ratios.append(tool / ours)
        cpu_ratios.append(tool_cpu / ours_cpu)
        print(
            f"{name:<22}{n:>7}{ours * 1e3:>9.2f}{tool * 1e3:>10.1f}{tool / ours:>8.1f}"
            f"{tool_cpu / ours_cpu:>10.1f}{ours / n * 1e6:>9.1f}{ours_cpu / n * 1e6:>12.1f}"
            f"{profile.flops_forward:>15,}{tool_flops:>15,}"
        )

    def geomean(xs: list[float]) -> float:
        return math.exp(sum(math.log(x) for x in xs) / len(xs))

    print(
        f"\n{len(ratios)} graphs: joulecast is {geomean(ratios):.1f}x faster than onnx-tool in wall "
        f"time, {geomean(cpu_ratios):.1f}x in CPU time (geometric means of per-graph best-of "
        "ratios; goal >= 10x, and <= 20 us/node at 10k nodes)"
    )

    wall_us, cpu_us = per_node["mlp-chain-10k"]
    print(f"mlp-chain-10k: {wall_us:.1f} us/node wall, {cpu_us:.1f} us/node CPU (goal <= 20 wall)")


if __name__ == "__main__":
    main()
