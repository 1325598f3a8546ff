"""The benchmark scripts' parts run on tiny settings (no timings are checked)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_meter_overhead as meter_bench
import bench_profiler as profiler_bench


def test_interval_brackets_the_geometric_mean() -> None:
    ratios = [1.01, 0.99, 1.03, 1.0, 1.02, 0.98]
    mean, t_ci, boot_ci = meter_bench.interval(ratios, seed=0)
    assert mean == pytest.approx(math.exp(sum(map(math.log, ratios)) / len(ratios)))
    assert t_ci[0] < mean < t_ci[1]
    assert boot_ci[0] <= mean <= boot_ci[1]


def test_sampler_thread_is_found_and_its_cpu_read_from_proc() -> None:
    steps = meter_bench.make_steps(samples=16)
    arm = next(a for a in meter_bench.arms(False) if a.name == "replay@0.01s")
    meter_bench.run_arm(arm, steps, n_steps=2, pairs=2, seed=0)
    assert len(arm.ratios) == 2 and all(r > 0 for r in arm.ratios)
    assert arm.sampler_threads == 2  # one sampler thread per meter-on window
    assert arm.samples >= 4  # each window samples at its start and its end
    assert arm.sampler_sched_s > 0


def test_both_profilers_count_a_small_chain() -> None:
    data = profiler_bench._chain(40, width=8)
    profile = profiler_bench.profile_graph(data)
    assert profile.node_count == 40
    assert profile.flops_forward > 0
    assert profiler_bench._onnx_tool(data, (1, 8)) > 0


def test_the_flood_graph_is_a_chain_the_profiler_reads() -> None:
    import bench_layer_flood as flood

    from joulecast.graph import profile_nodes

    data = flood.flood_graph(50, tag=1)
    assert data != flood.flood_graph(50, tag=2)  # distinct bytes: no cache answers a flood
    nodes = profile_nodes(data)
    assert len(nodes) == 50 and {n.op_type for n in nodes} == {"Gemm"}
    assert all(n.flops > 0 for n in nodes)
