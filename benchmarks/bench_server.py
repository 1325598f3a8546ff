"""Benchmark of the gRPC server on loopback (one run; quote the numbers it prints).

    .venv/bin/python benchmarks/bench_server.py [--artifacts DIR] [--requests 400] [--seconds 10]

1. PredictEnergy latency (p50/p95) for the sample CRNN graph, sequential calls from one client;
   once with the same graph (the server's profile cache answers) and once with a graph whose
   bytes change on every call (profiled each time: the cold path).
2. Throughput with 8 concurrent clients (one channel each) for ``--seconds``.
   Then ``PredictorRegistry.predict`` alone, in process (the estimator's share of a request).
3. Bytes uploaded for the paper's largest MLP (mlp n32 h4096, 554 M parameters): the weightless
   graph (exported for real, from uninitialised memory) vs the full model (computed as
   4 bytes x parameters + the graph: exporting 2.2 GB of weights is not needed to know it).

The server runs in its own process (``python -m joulecast.cli serve --port 0``). Without
``--artifacts`` a throwaway predictor is fitted on formula energies of a small sweep.
Goals (issue 7): p50 <= 15 ms, >= 300 req/s with 8 clients on 2 cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


def throwaway_artifacts(folder: Path) -> Path:
    """Fit a predictor on a small sweep with formula energies (J = 2e-9 x FLOPs)."""
    import torch

    from collector.models import INPUT_SHAPE, ModelConfig, build_model
    from estimator.service import fit_and_publish
    from joulecast.graph import profile_graph
    from joulecast.measurement import Row
    from joulecast.store import MeasurementStore
    from joulecast.weightless import export_weightless

    configs = [ModelConfig("mlp", (1,), (h,)) for h in (32, 64, 128)]
    configs += [ModelConfig("cnn", (1,), (h,)) for h in (4, 8, 16)]
    configs += [ModelConfig("rnn", (1,), (h,)) for h in (16, 32, 64)]
    configs += [ModelConfig("crnn", (1, 1), (h, h)) for h in (8, 16, 32)]
    db = folder / "bench.db"
    with MeasurementStore(db) as store:
        rows = []
        for config in configs:
            graph = export_weightless(build_model(config).eval(), torch.zeros(1, *INPUT_SHAPE))
            sha = store.put_graph(graph)
            profile = profile_graph(graph)
            for phase in ("train", "test"):
                flops = profile.flops_train if phase == "train" else profile.flops_forward
                energy = 2e-9 * flops * 64
                rows.append(
                    Row(
                        run_key=f"{config.config_id}/{phase}",
                        plan="bench",
                        config_id=config.config_id,
                        family=config.family,
                        variant="",
                        num_layers=config.num_layers_text,
                        hidden_size=config.hidden_size_text,
                        phase=phase,
                        repeat=0,
                        samples=64,
                        batch_size=8,
                        epochs=1,
                        status="ok",
                        hardware="bench-cpu",
                        device="cpu",
                        duration_s=energy / 40 + 0.01,
                        energy_j=energy,
                        energy_source="rapl",
                        energy_is_estimate=False,
                        graph_sha256=sha,
                    )
                )
        store.put_rows([(r, ()) for r in rows])
    artifacts = folder / "artifacts"
    fit_and_publish(db, "bench-cpu", artifacts)
    return artifacts


def start_server(artifacts: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "joulecast.cli",
            "serve",
            "--port",
            "0",
            "--artifacts",
            str(artifacts),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split()[-1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(address: str, graph: bytes, n: int, vary: bool) -> dict[str, float]:
    import onnx

    from server.client import EstimatorClient

    variants = [graph] * n
    if vary:  # a different doc_string per call: different bytes, same graph, no cache hit
        model = onnx.load_model_from_string(graph)
        variants = []
        for i in range(n):
            model.doc_string = f"bench {i}"
            variants.append(model.SerializeToString())
    with EstimatorClient(address) as client:
        for _ in range(10):
            client.predict(graph, stream=False)
        times = []
        for data in variants:
            start = time.perf_counter()
            client.predict(data, stream=False)
            times.append(time.perf_counter() - start)
    return {
        "n": n,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
        "mean_ms": 1000 * statistics.fmean(times),
    }


def throughput(address: str, graph: bytes, clients: int, seconds: float) -> dict[str, float]:
    from server.client import EstimatorClient

    counts = [0] * clients
    errors = [0] * clients
    stop = threading.Event()

    def worker(i: int) -> None:
        with EstimatorClient(address) as client:
            client.predict(graph, stream=False)
            while not stop.is_set():
                try:
                    client.predict(graph, stream=False)
                    counts[i] += 1
                except Exception:
                    errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up: channels connected
    base = sum(counts)
    start = time.perf_counter()
    time.sleep(seconds)
    done = sum(counts) - base
    elapsed = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": done,
        "req_per_s": done / elapsed,
        "errors": sum(errors),
    }


def registry_latency(artifacts: Path, graph: bytes, n: int) -> dict[str, float]:
    """In-process ``PredictorRegistry.predict`` on the sample's (already computed) profile.

    What the server spends in the estimator per cached request, without gRPC or profiling.
    """
    from estimator.service import PredictorRegistry
    from joulecast.graph import profile_graph

    registry = PredictorRegistry(artifacts)
    profile = profile_graph(graph)
    for _ in range(10):
        registry.predict(profile, batch_size=8, samples=1578, epochs=1)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        registry.predict(profile, batch_size=8, samples=1578, epochs=1)
        times.append(time.perf_counter() - start)
    return {
        "n": n,
        "p50_ms": 1000 * statistics.median(times),
        "p95_ms": 1000 * percentile(times, 0.95),
    }


def largest_mlp_upload() -> dict[str, object]:
    import torch

    from collector.models import INPUT_SHAPE, ModelConfig, build_model, count_params
    from joulecast.weightless import export_weightless

    config = ModelConfig("mlp", (32,), (4096,))
    with torch.device("meta"):
        model = build_model(config)
    model = model.to_empty(device="cpu")  # uninitialised: pages never written, never resident
    start = time.perf_counter()
    graph = export_weightless(model.eval(), torch.zeros(1, *INPUT_SHAPE))
    export_s = time.perf_counter() - start
    params = count_params(model)
    full = 4 * params + len(graph)
    return {
        "model": config.config_id,
        "params": params,
        "weightless_bytes": len(graph),
        "full_bytes_computed": full,
        "ratio": full / len(graph),
        "weightless_export_s": export_s,
        "graph_sha256": hashlib.sha256(graph).hexdigest()[:16],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, help="published predictors (default: fit one)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    from joulecast.weightless import strip_weights_file

    graph = strip_weights_file(SAMPLE)
    report: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
        "graph": f"{SAMPLE.name}: {SAMPLE.stat().st_size} bytes full, {len(graph)} stripped",
    }
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = args.artifacts or throwaway_artifacts(Path(tmp))
        proc, address = start_server(artifacts)
        try:
            report["latency_cached"] = latency(address, graph, args.requests, vary=False)
            report["latency_cold"] = latency(address, graph, args.requests // 4, vary=True)
            report["throughput"] = throughput(address, graph, args.clients, args.seconds)
        finally:
            proc.terminate()
            proc.wait(30)
        report["registry_predict_in_process"] = registry_latency(artifacts, graph, args.requests)
    report["upload_largest_mlp"] = largest_mlp_upload()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
