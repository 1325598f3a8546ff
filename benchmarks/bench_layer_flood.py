"""A layer-sum flood against a real server: do ordinary predictions still answer, and does the
server stop working once the flood's clients have gone? (one run; quote what it prints)

    .venv/bin/python benchmarks/bench_layer_flood.py [--artifacts artifacts] [--seconds 30]
        [--flood-clients 8] [--nodes 49000] [--flood-timeout-s 15] [--baseline DIR]

The server (``joulecast serve --port 0``) serves ``--artifacts`` (the shipped ones: the
layer-sum ``xeon-gold-5120-2c`` and ``cpu-amd-epyc``). For ``--seconds``:

- ``--flood-clients`` clients each send, one after another, graphs of ``--nodes`` Gemm nodes
  in a chain (about 2 MB at 49,000 nodes, each graph's bytes distinct, so no cache answers)
  to ``xeon-gold-5120-2c``, each call with a ``--flood-timeout-s`` deadline;
- one "normal" client predicts every 100 ms, alternating the sample CRNN (5 KB, stripped) on
  the default hardware and on ``xeon-gold-5120-2c``, its bytes made distinct each call (an
  unknown protobuf field with a counter) so that every call is profiled and predicted.

Then the flood's clients leave: each cancels its call in flight. The server's CPU (the server
process and its workers, from /proc) is read every 0.25 s; "idle" is the first 0.5 s window
after the clients left in which it used under 5 % of a core. Printed, as JSON: the normal
predictions' latency p50/p95/p99/max and errors, the flood calls' outcomes, the seconds to
idle, the server's CPU in cores during the flood, and the load average at start and end.
``--baseline DIR`` runs the same against another checkout (``git archive REV | tar -x -C DIR``).

Goals: the normal predictions' p99 <= 0.5 s during the flood; the server idle within 2 s of the
flood's clients leaving (it used to keep two cores busy for about 70 s).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_server import _cpu_s, _pids, _unknown_field, percentile, start_server  # noqa: E402

LAYER_HARDWARE = "xeon-gold-5120-2c"
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"
IDLE_CORES = 0.05
_UNIQUE = itertools.count()


def flood_graph(nodes: int, tag: int, width: int = 64) -> bytes:
    """A chain of ``nodes`` Gemm nodes with short value names (about 27 bytes a node)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [],
        f"flood{tag}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(f"{nodes - 1:x}", TensorProto.FLOAT, None)],
    )
    previous = "x"
    for i in range(nodes):
        node = graph.node.add()
        node.op_type, node.input[:], node.output[:] = "Gemm", [previous, f"w{i:x}"], [f"{i:x}"]
        graph.initializer.add(name=f"w{i:x}", data_type=TensorProto.FLOAT, dims=[width, width])
        previous = f"{i:x}"
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _stub(address: str):
    from rpc.generated import estimator_pb2_grpc as pb_grpc

    options = [("grpc.max_send_message_length", 64 << 20)]
    return pb_grpc.EnergyEstimatorStub(grpc.insecure_channel(address, options=options))


def _request(graph: bytes, hardware: str | None, batch: int = 8):
    from rpc.generated import estimator_pb2 as pb

    return pb.PredictEnergyRequest(
        onnx_model=graph, batch_size=batch, samples=batch * 10, epochs=1, hardware=hardware or ""
    )


def flood_and_leave(address: str, pid: int, args: argparse.Namespace) -> dict[str, object]:
    from joulecast.weightless import strip_weights_file

    sample = strip_weights_file(SAMPLE)
    stop = threading.Event()
    outcomes: dict[str, int] = {}
    in_flight: list[grpc.Future] = []
    lock = threading.Lock()
    latencies: list[float] = []
    normal_errors: dict[str, int] = {}
    graphs = [flood_graph(args.nodes, n) for n in range(args.flood_clients * 2)]
    graph_bytes = len(graphs[0])

    def flood(i: int) -> None:
        stub = _stub(address)
        n = 0
        while not stop.is_set():
            graph = graphs[(i * 2 + n) % len(graphs)] + _unknown_field(next(_UNIQUE))
            n += 1
            future = stub.PredictEnergy.future(
                _request(graph, LAYER_HARDWARE, 32), timeout=args.flood_timeout_s
            )
            with lock:
                in_flight.append(future)
            try:
                future.result()
                code = "OK"
            except grpc.FutureCancelledError:
                code = "CANCELLED"
            except grpc.RpcError as exc:
                code = exc.code().name
            with lock:
                in_flight.remove(future)
                outcomes[code] = outcomes.get(code, 0) + 1

    def normal() -> None:
        stub = _stub(address)
        for n in itertools.count():
            if stop.is_set():
                return
            hardware = LAYER_HARDWARE if n % 2 else None
            began = time.monotonic()
            try:
                request = _request(sample + _unknown_field(next(_UNIQUE)), hardware)
                stub.PredictEnergy(request, timeout=30)
                latencies.append(time.monotonic() - began)
            except grpc.RpcError as exc:
                name = exc.code().name
                normal_errors[name] = normal_errors.get(name, 0) + 1
            time.sleep(max(0.0, 0.1 - (time.monotonic() - began)))

    load_start = os.getloadavg()
    threads = [
        threading.Thread(target=flood, args=(i,), daemon=True) for i in range(args.flood_clients)
    ]
    threads.append(threading.Thread(target=normal, daemon=True))
    cpu_before, began = _cpu_s(_pids(pid)), time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(args.seconds)
    cpu_during = (_cpu_s(_pids(pid)) - cpu_before) / (time.monotonic() - began)
    stop.set()
    with lock:
        leaving = list(in_flight)
    for future in leaving:
        future.cancel()  # the flood's clients leave
    left = time.monotonic()
    idle_after = None
    samples: list[tuple[float, float]] = [(left, _cpu_s(_pids(pid)))]
    while time.monotonic() - left < args.idle_wait_s:
        time.sleep(0.25)
        now = (time.monotonic(), _cpu_s(_pids(pid)))
        samples.append(now)
        earlier = [s for s in samples if s[0] <= now[0] - 0.5]
        if earlier:  # the window: from the newest sample at least 0.5 s old to now
            start = earlier[-1]
            if (now[1] - start[1]) / (now[0] - start[0]) < IDLE_CORES:
                idle_after = round(start[0] - left, 2)
                break
    for thread in threads:
        thread.join(args.flood_timeout_s + 5)
    return {
        "flood_clients": args.flood_clients,
        "flood_graph_nodes": args.nodes,
        "flood_graph_bytes": graph_bytes,
        "seconds": args.seconds,
        "flood_outcomes": outcomes,
        "in_flight_when_leaving": len(leaving),
        "server_cores_during_flood": round(cpu_during, 2),
        "normal_requests": len(latencies),
        "normal_errors": normal_errors,
        "normal_p50_s": round(percentile(latencies, 0.50), 3) if latencies else None,
        "normal_p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "normal_p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "normal_max_s": round(max(latencies), 3) if latencies else None,
        "idle_s_after_clients_left": idle_after
        if idle_after is not None
        else f"> {args.idle_wait_s}",
        "loadavg_start": [round(v, 2) for v in load_start],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--flood-clients", type=int, default=8)
    parser.add_argument("--nodes", type=int, default=49_000)
    parser.add_argument("--flood-timeout-s", type=float, default=15.0)
    parser.add_argument("--idle-wait-s", type=float, default=30.0)
    parser.add_argument("--baseline", type=Path, help="another checkout to run the same against")
    args = parser.parse_args()
    results = []
    for code, root in (("this", ROOT), ("baseline", args.baseline)):
        if root is None:
            continue
        proc, address = start_server(args.artifacts, Path(root))
        try:
            time.sleep(2.0)  # the workers finish starting
            result = {"code": code, **flood_and_leave(address, proc.pid, args)}
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:  # the baseline may be stuck in a graph
                proc.kill()
                proc.wait(30)
        print(json.dumps(result), flush=True)
        results.append(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
