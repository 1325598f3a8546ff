"""Profiling time: joulecast's graph profiler vs onnx-tool, on the same full ONNX graphs.

Run: ``.venv/bin/python benchmarks/bench_profiler.py [--repeat 5]``. For each graph (the paper
configurations up to ``--max-params`` parameters, exported with weights by the legacy exporter
as the collector does, plus the CRNN), both tools profile the same bytes in this one process;
the best of ``--repeat`` runs counts. Prints per-graph times, FLOPs (ours in DeepSpeed's
convention, onnx-tool's 2 x MACs) and their difference, then the overall speed ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import warnings
from importlib import resources

import numpy as np
import onnx
import torch

from collector.models import INPUT_SHAPE, ModelConfig, build_model, count_params
from joulecast.graph import profile_graph


def _configs() -> list[ModelConfig]:
    plan = json.loads(resources.files("collector").joinpath("plans/paper.json").read_text())
    return [ModelConfig(r["family"], tuple(r["layers"]), tuple(r["hidden"])) for r in plan["runs"]]


def _full_export(config: ModelConfig) -> bytes:
    model = build_model(config).eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, *INPUT_SHAPE),),
            buffer,
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            opset_version=17,
        )
    return buffer.getvalue()


def _onnx_tool_flops(data: bytes) -> int:
    import onnx_tool

    model = onnx_tool.Model(onnx.load_model_from_string(data))
    model.graph.shape_infer({"x": np.zeros((1, *INPUT_SHAPE), dtype=np.float32)})
    model.graph.profile()
    return int(2 * model.graph.macs[0])


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-params", type=int, default=30_000_000)
    args = parser.parse_args()
    import logging

    logging.disable(logging.WARNING)
    rows = []
    total_ours = total_tool = 0.0
    print(
        f"{'config':<24}{'ours ms':>9}{'onnx-tool ms':>14}{'ratio':>8}"
        f"{'FLOPs ours':>16}{'FLOPs onnx-tool':>17}{'diff %':>9}"
    )
    for config in _configs():
        with torch.device("meta"):
            if count_params(build_model(config)) > args.max_params:
                continue
        data = _full_export(config)
        t_ours, ours = _best(lambda data=data: profile_graph(data), args.repeat)
        t_tool, tool = _best(lambda data=data: _onnx_tool_flops(data), args.repeat)
        total_ours += t_ours
        total_tool += t_tool
        diff = 100 * (tool - ours.flops_forward) / ours.flops_forward
        rows.append((config.config_id, diff))
        print(
            f"{config.config_id:<24}{t_ours * 1e3:>9.1f}{t_tool * 1e3:>14.1f}"
            f"{t_tool / t_ours:>8.1f}{ours.flops_forward:>16,}{tool:>17,}{diff:>+9.2f}"
        )
    print(
        f"\n{len(rows)} graphs; total ours {total_ours:.3f} s, onnx-tool {total_tool:.3f} s: "
        f"joulecast is {total_tool / total_ours:.1f}x faster (goal >= 10x)"
    )


if __name__ == "__main__":
    main()
