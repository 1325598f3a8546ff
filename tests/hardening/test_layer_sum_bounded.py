"""The per-node (layer-sum) path is bounded like graph profiles: the per-node records and their
prediction run in the worker pool (never in the server), under a deadline that costs one
worker; a call whose client leaves stops its work; a flood of large graphs leaves a worker for
ordinary ones."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc
import pytest
from hardening_harness import HARDWARE
from layer_sum_kit import LAYER_HARDWARE, gemm_chain, publish_layer_bundle

from estimator.layerwise import LayerSum
from estimator.service import PredictorRegistry
from rpc.generated import estimator_pb2 as pb


@pytest.fixture(scope="module")
def layered(fitted, tmp_path_factory) -> Path:
    """Artifacts holding ``cpu-test`` and the small layer-sum ``cpu-layers``."""
    artifacts = tmp_path_factory.mktemp("layered") / "artifacts"
    shutil.copytree(fitted[0], artifacts)
    publish_layer_bundle(artifacts, HARDWARE)
    return artifacts


@pytest.fixture(scope="module")
def chain_30k() -> bytes:
    return gemm_chain(30_000)


def _request(graph: bytes, hardware: str = LAYER_HARDWARE, batch: int = 8):
    return pb.PredictEnergyRequest(
        onnx_model=graph, batch_size=batch, samples=batch * 10, epochs=1, hardware=hardware
    )


def _serve(start_server, artifacts: Path, **settings):
    return start_server(registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, **settings)


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes ``pids`` have used."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / 100.0


def test_per_node_work_never_runs_in_the_server(start_server, layered, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("per-node work ran in the server process")

    # every per-node answer goes through predict_nodes: refused here, it may run only in a worker
    monkeypatch.setattr(LayerSum, "predict_nodes", refuse)
    served = _serve(start_server, layered)
    reply = served.stub.PredictEnergy(_request(gemm_chain(4000)), timeout=60)
    assert reply.test.available and reply.test.predictor == "layer-sum"
    # Each of the 4,000 tiny Gemms keeps its per-call cost (0.01 J in the kit's law), so the
    # layer sum can pass the grafted bundle's train answer; train is then raised above test's.
    assert reply.train.available and reply.train.energy_j > reply.test.energy_j
    assert any("4000 nodes were predicted one by one" in w for w in reply.warnings)


def test_a_layer_job_past_its_deadline_costs_one_worker(
    start_server, layered, chain_30k, rpc_error, family_graphs
) -> None:
    served = _serve(start_server, layered, layer_deadline_s=0.2)
    code, details = rpc_error(served.stub.PredictEnergy, _request(chain_30k), timeout=60)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "layer-sum of this graph took longer than 0.2 s" in details
    pool = served.running.pool
    assert pool.replaced + pool.interrupted == 1
    small = served.stub.PredictEnergy(_request(family_graphs["mlp"]), timeout=60)
    assert small.test.predictor == "layer-sum"


def test_a_caller_that_leaves_stops_its_work(start_server, layered, chain_30k) -> None:
    served = _serve(start_server, layered, profile_workers=2)
    pool = served.running.pool
    assert pool.wait_ready(60)
    began = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        served.stub.PredictEnergy(_request(chain_30k), timeout=0.8)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    left = time.monotonic()
    deadline = left + 3.0
    while pool.replaced + pool.interrupted < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.interrupted + pool.replaced >= 1, "a call whose client left went on working"
    assert time.monotonic() - began < 2.5
    assert pool.wait_ready(60)
    pids = pool.pids()
    before = _cpu_s(pids)
    time.sleep(1.0)
    assert _cpu_s(pids) - before < 0.2, "a worker still works for a caller that left"


def test_a_flood_of_large_graphs_leaves_a_worker_for_small_ones(
    start_server, layered, family_graphs
) -> None:
    served = _serve(start_server, layered, profile_workers=3)
    assert served.running.pool.wait_ready(60)
    graphs = [gemm_chain(20_000, width=64 + i) for i in range(4)]  # four distinct graphs
    errors: list[grpc.RpcError] = []

    def flood(graph: bytes) -> None:
        try:
            served.stub.PredictEnergy(_request(graph), timeout=60)
        except grpc.RpcError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flood, args=(g,)) for g in graphs]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # the flood holds the workers it may
    latencies = []
    for batch in (8, 16, 24, 32):  # new answers each time: profiled once, predicted each
        began = time.monotonic()
        reply = served.stub.PredictEnergy(_request(family_graphs["cnn"], batch=batch), timeout=60)
        latencies.append(time.monotonic() - began)
        assert reply.test.predictor == "layer-sum"
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert max(latencies) < 1.5, latencies


def test_workers_that_died_idle_are_replaced_not_blamed_on_the_next_graphs(
    start_server, layered, family_graphs
) -> None:
    """Every idle worker killed (an OOM killer, an operator): the next valid graphs are
    answered by their replacements, never refused as if they had exhausted a worker."""
    import os
    import signal

    served = _serve(start_server, layered, profile_workers=2)
    pool = served.running.pool
    assert pool.wait_ready(60)
    killed = pool.pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    for pid in killed:  # reaped by nobody yet: wait until each is gone
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
    for family in ("mlp", "cnn", "rnn"):
        reply = served.stub.PredictEnergy(_request(family_graphs[family]), timeout=60)
        assert reply.test.available, family
    assert pool.replaced >= len(killed) and not set(killed) & set(pool.pids())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
