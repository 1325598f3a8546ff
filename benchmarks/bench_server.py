"""Benchmark of the gRPC server on loopback (one run; quote the numbers it prints).

    .venv/bin/python benchmarks/bench_server.py [--artifacts DIR] [--seconds 5] [--max-requests N]
        [--clients 1 8 32] [--graphs small large] [--baseline DIR] [--rounds 1] [--full-export]

For a small graph (the sample CRNN, stripped) and a large one (a 12-layer transformer encoder,
weightless), at 1, 8 and 32 concurrent clients (one channel each), for ``--seconds`` each or
until ``--max-requests`` answers were timed, whichever comes first:

- cached: the same bytes and options every call (the server's answer cache answers);
- uncached: every call's bytes differ (an unknown protobuf field with a counter is appended,
  which the parser skips; the counter runs on across runs), so every call is profiled by a
  worker process.

Each run prints req/s, latency p50/p95/p99, the server's CPU use in cores (utime + stime of the
server process and its profiling workers, from /proc, over the run) and peak resident memory
(the server's VmHWM; the workers' largest VmRSS seen while polling every 20 ms); the server
process's own share of that CPU (``parent_cpu_cores``) and the CPU of this benchmark's client
threads (``clients_cpu_cores``), which share the machine's cores with the server; and each of
these three per answered request (``*_cpu_ms_per_req``).

``--baseline DIR`` starts a second server from another checkout (``git archive main | tar -x -C
DIR``) on the same artifacts; every run kind then runs against both, ``--rounds`` times, the
order swapped each round, and each line names its ``code`` (``this`` or ``baseline``). The
summary gives per code and round the uncached 8-vs-1-client ratio, the 8-client server cores,
the cached 1-client p50 and the server process's CPU per request.
Last, the upload of the paper's largest MLP (mlp n32 h4096, 554 M parameters): the weightless
graph's size as exported, and with ``--full-export`` the full model exported with its weights
to a temporary file (2.2 GB, about a minute) and its size measured on disk.

The server runs in its own process (``python -m joulecast.cli serve --port 0``). Without
``--artifacts`` a throwaway predictor is fitted on formula energies of a small sweep.
Goals: uncached req/s at 8 clients >= 1.7x the 1-client rate on 2 cores, server CPU
> 1.5 cores under load, cached p50 <= 2 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
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
_UNIQUE = itertools.count()
"""Numbers the uncached calls across every run against one server: a counter restarted per run
would resend the previous run's bytes, which the server's profile cache (256 graphs) answers,
and an "uncached" run would then time cache hits (the 12 ms p50 of an earlier report)."""


def throwaway_artifacts(folder: Path) -> Path:
    """Fit a predictor on a small sweep with formula energies (J = 2e-9 x FLOPs), labelled as
    the estimates they are: the benchmark needs a predictor to serve, not a good one."""
    import torch

    from collector.models import INPUT_SHAPE, ModelConfig, build_model
    from estimator.publish import fit_and_publish
    from joulecast.graph import profile_graph
    from joulecast.measurement import PHASES, Row
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
            for phase in PHASES:
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
                        energy_source="estimate-formula",  # made up, never measured
                        energy_is_estimate=True,
                        graph_sha256=sha,
                    )
                )
        store.put_rows([(r, ()) for r in rows])
    artifacts = folder / "artifacts"
    fit_and_publish(db, "bench-cpu", artifacts)
    return artifacts


def start_server(artifacts: Path, root: Path = ROOT) -> tuple[subprocess.Popen[str], str]:
    """``joulecast serve`` of the checkout at ``root`` (this one, or ``--baseline``)."""
    from server.spawn import start_serve

    env = {**os.environ, "PYTHONPATH": str(root)}
    proc, address = start_serve("--artifacts", str(artifacts), cwd=root, env=env)
    if address is None:
        proc.kill()
        raise SystemExit("server did not start")
    return proc, address


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _unknown_field(n: int) -> bytes:
    """Protobuf field 1999 (varint ``n``): unknown to ModelProto, skipped by the parser."""
    out = bytearray()
    for value in ((1999 << 3) | 0, n):
        while True:
            byte = value & 0x7F
            value >>= 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
    return bytes(out)


def _pids(pid: int) -> list[int]:
    """The server and its live children (the profiling workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def per_request(cpu_s: float, times: list[float]) -> float | None:
    """CPU milliseconds per answered request (``/proc`` counts in 10 ms ticks: quote it for
    runs of a few hundred requests or more)."""
    return round(1000 * cpu_s / len(times), 3) if times else None


def load(
    server_pid: int,
    address: str,
    graph: bytes,
    clients: int,
    seconds: float,
    cached: bool,
    max_requests: int,
) -> dict[str, float]:
    """``clients`` threads calling PredictEnergy for ``seconds``; see the module docstring."""
    from client.remote import EstimatorClient

    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    timed = [0] * clients
    stop = threading.Event()
    measuring = threading.Event()
    worker_peak_kib = 0

    def client_loop(i: int) -> None:
        with EstimatorClient(address, timeout_s=60) as client:
            client.predict(graph, stream=False)
            while not stop.is_set():
                data = graph if cached else graph + _unknown_field(next(_UNIQUE))
                start = time.perf_counter()
                try:
                    client.predict(data, stream=False)
                except Exception:
                    errors[i] += 1
                    continue
                if measuring.is_set():
                    latencies[i].append(time.perf_counter() - start)
                    timed[i] += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm-up: channels connected, workers busy
    pids = _pids(server_pid)
    cpu_before = _cpu_s(pids)
    parent_before = _cpu_s(pids[:1])
    clients_before = time.process_time()
    measuring.set()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds and sum(timed) < max_requests:
        for pid in pids[1:]:
            worker_peak_kib = max(worker_peak_kib, _status_kib(pid, "VmRSS"))
        time.sleep(0.02)
    measuring.clear()
    elapsed = time.perf_counter() - start
    cpu_after = _cpu_s(pids)
    parent_s = _cpu_s(pids[:1]) - parent_before
    clients_s = time.process_time() - clients_before
    stop.set()
    for t in threads:
        t.join()
    times = [x for per_client in latencies for x in per_client]
    return {
        "clients": clients,
        "mode": "cached" if cached else "uncached",
        "requests": len(times),
        "req_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(1000 * percentile(times, 0.50), 2) if times else None,
        "p95_ms": round(1000 * percentile(times, 0.95), 2) if times else None,
        "p99_ms": round(1000 * percentile(times, 0.99), 2) if times else None,
        "server_cpu_cores": round((cpu_after - cpu_before) / elapsed, 2),
        "parent_cpu_cores": round(parent_s / elapsed, 2),
        "clients_cpu_cores": round(clients_s / elapsed, 2),
        "server_cpu_ms_per_req": per_request(cpu_after - cpu_before, times),
        "parent_cpu_ms_per_req": per_request(parent_s, times),
        "clients_cpu_ms_per_req": per_request(clients_s, times),
        "server_peak_rss_mib": _status_kib(server_pid, "VmHWM") // 1024,
        "worker_peak_rss_mib": worker_peak_kib // 1024,
        "errors": sum(errors),
    }


GRAPH_TEXT = {
    "small": f"{SAMPLE.name} stripped",
    "large": "transformer encoder 12x256, weightless",
}


def encoder_graph() -> bytes:
    """A 12-layer transformer encoder (d=256, 64 frames), weightless (about 320 KB): the large graph."""
    import torch
    from torch import nn

    from joulecast.weightless import export_weightless

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(128, 256)
            layer = nn.TransformerEncoderLayer(256, 4, 1024, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)
            self.head = nn.Linear(256, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seq = self.proj(x.squeeze(1).transpose(1, 2))
            return torch.sigmoid(self.head(self.encoder(seq).mean(1)))

    torch.manual_seed(0)
    return export_weightless(Encoder().eval(), torch.zeros(1, 1, 128, 64))


def registry_latency(artifacts: Path, graph: bytes, n: int) -> dict[str, object]:
    """In-process ``PredictorRegistry.predict`` on the sample's (already computed) profile.

    What the server spends in the estimator on a request its answer cache does not hold,
    without gRPC or profiling. Measured in a thread of its own, as the server's call threads
    run it: in a process's main thread XGBoost's OpenMP team made the shipped roofline-boosted
    predictor cost 10 to 35 ms a call on this 2-core machine, against about 2 ms elsewhere."""
    from estimator.service import PredictorRegistry
    from joulecast.graph import profile_graph

    registry = PredictorRegistry(artifacts)
    profile = profile_graph(graph)
    out: dict[str, object] = {"n": n}

    def measure() -> None:
        for _ in range(10):
            registry.predict(profile, batch_size=8, samples=1578, epochs=1)
        times = []
        for _ in range(n):
            start = time.perf_counter()
            registry.predict(profile, batch_size=8, samples=1578, epochs=1)
            times.append(time.perf_counter() - start)
        out["p50_ms"] = round(1000 * statistics.median(times), 3)
        out["p95_ms"] = round(1000 * percentile(times, 0.95), 3)

    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    return out


def largest_mlp_upload(full_export: bool) -> dict[str, object]:
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
    out: dict[str, object] = {
        "model": config.config_id,
        "params": params,
        "weightless_bytes": len(graph),
        "weightless_export_s": round(export_s, 2),
        "graph_sha256": hashlib.sha256(graph).hexdigest()[:16],
    }
    if full_export:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "full.onnx"
            start = time.perf_counter()
            torch.onnx.export(
                model.eval(), (torch.zeros(1, *INPUT_SHAPE),), str(path), dynamo=False
            )
            size = sum(p.stat().st_size for p in Path(tmp).iterdir())  # with external data
            out["full_bytes_measured"] = size
            out["full_export_s"] = round(time.perf_counter() - start, 1)
            out["ratio"] = round(size / len(graph), 1)
    return out


def _interleaved(
    servers: dict[str, tuple[subprocess.Popen[str], str]],
    graphs: dict[str, bytes],
    args: argparse.Namespace,
) -> list[dict[str, object]]:
    """Every (graph, mode, round, clients) run once against each server, the servers' order
    swapped from one round to the next, so that a neighbour's load falls on both alike."""
    runs = []
    for name, graph in graphs.items():
        for cached in (True, False):
            for round_ in range(args.rounds):
                for clients in args.clients:
                    order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                    for code in order:
                        proc, address = servers[code]
                        run = load(
                            proc.pid,
                            address,
                            graph,
                            clients,
                            args.seconds,
                            cached,
                            args.max_requests,
                        )
                        run = {"code": code, "graph": name, "round": round_, **run}
                        print(json.dumps(run), flush=True)
                        runs.append(run)
    return runs


def ratio_bound(one: dict[str, object], eight: dict[str, object]) -> float | None:
    """The 8-vs-1 ratio had the 8-client run had every core of the machine: each request
    costs the server and the clients ``C`` ms of CPU (measured at 8 clients), so 8 clients
    answer at most ``cores / C`` per second; divided by the measured 1-client rate. Computed,
    not measured: it tells a run that lost cores to a neighbour from a server that cannot
    use them."""
    cpu_ms = (eight["server_cpu_ms_per_req"] or 0) + (eight["clients_cpu_ms_per_req"] or 0)  # type: ignore[operator]
    if not cpu_ms or not one["req_per_s"]:
        return None
    return round((os.cpu_count() or 1) * 1000 / cpu_ms / one["req_per_s"], 2)  # type: ignore[operator]


def _summary(runs: list[dict[str, object]], codes: list[str], graphs: list[str]) -> dict:
    """Per code and graph, one value per round: the uncached 8-client / 1-client req/s, and
    the cached 1-client p50 and server CPU per request."""

    def pick(code: str, graph: str, mode: str, clients: int) -> list[dict[str, object]]:
        return [
            r
            for r in runs
            if (r["code"], r["graph"], r["mode"], r["clients"]) == (code, graph, mode, clients)
        ]

    out: dict[str, object] = {}
    for graph in graphs:
        for code in codes:
            ones = pick(code, graph, "uncached", 1)
            eights = pick(code, graph, "uncached", 8)
            out[f"uncached_scaling_{graph}_8_vs_1[{code}]"] = [
                round(e["req_per_s"] / o["req_per_s"], 2)  # type: ignore[operator]
                for o, e in zip(ones, eights, strict=False)
                if o["req_per_s"]
            ]
            out[f"uncached_server_cpu_cores_{graph}_8[{code}]"] = [
                e["server_cpu_cores"] for e in eights
            ]
            out[f"uncached_all_cpu_cores_{graph}_8[{code}]"] = [
                round(e["server_cpu_cores"] + e["clients_cpu_cores"], 2)  # type: ignore[operator]
                for e in eights
            ]
            out[f"uncached_ratio_bound_{graph}_8_vs_1[{code}]"] = [
                ratio_bound(o, e) for o, e in zip(ones, eights, strict=False)
            ]
            cached = pick(code, graph, "cached", 1)
            out[f"cached_p50_ms_{graph}_1[{code}]"] = [c["p50_ms"] for c in cached]
            for mode in ("cached", "uncached"):
                out[f"{mode}_parent_cpu_ms_per_req_{graph}_8[{code}]"] = [
                    r["parent_cpu_ms_per_req"] for r in pick(code, graph, mode, 8)
                ]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, help="published predictors (default: fit one)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per run")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--max-requests", type=int, default=3000, help="timed answers per run at most"
    )
    parser.add_argument("--requests", type=int, default=400, help="in-process registry calls")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git archive main | tar -x -C DIR`): its server runs "
        "beside this one, runs interleaved",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each kind per server")
    parser.add_argument("--graphs", nargs="+", default=["small", "large"])
    parser.add_argument(
        "--full-export", action="store_true", help="also export the 2.2 GB full model"
    )
    args = parser.parse_args()

    from joulecast.weightless import strip_weights_file

    graphs = {"small": strip_weights_file(SAMPLE), "large": encoder_graph()}
    graphs = {name: graphs[name] for name in args.graphs}
    report: dict[str, object] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "graphs": {
            name: f"{GRAPH_TEXT[name]}, {len(graph)} bytes" for name, graph in graphs.items()
        },
    }
    roots = {"this": ROOT}
    if args.baseline is not None:
        roots["baseline"] = args.baseline.resolve()
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = args.artifacts or throwaway_artifacts(Path(tmp))
        servers: dict[str, tuple[subprocess.Popen[str], str]] = {}
        try:
            for code, root in roots.items():
                servers[code] = start_server(artifacts, root)
            runs = _interleaved(servers, graphs, args)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(30)
        report["runs"] = runs
        report["registry_predict_in_process"] = registry_latency(
            artifacts, next(iter(graphs.values())), args.requests
        )
    report["load_average_end"] = os.getloadavg()
    report.update(_summary(runs, list(roots), list(graphs)))
    report["upload_largest_mlp"] = largest_mlp_upload(args.full_export)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
