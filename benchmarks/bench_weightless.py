"""Profiling a model with embedded weights: memory and time follow the graph, not the weights.

    .venv/bin/python benchmarks/bench_weightless.py [--repeats 3] [--compare] [--keep FILE]

Writes a VGG-16-sized ONNX model (13 convolutions, 3 dense layers, 138 M float32 parameters:
~553 MB of embedded ``raw_data``) into a temporary folder, streaming the weights to disk so
that building it costs little memory, then measures whole processes (median wall time, the
largest peak RSS):

- ``joulecast profile VGG.onnx`` (the wire-format strip, then the profiler),
- the strip alone (``joulecast.weightless.strip_weights_file``),
- ``joulecast predict VGG.onnx`` against a server this script starts (shipped artifacts; the
  client strips, uploads a few KB, prints the answer),
- with ``--compare``, the old route for reference: ``onnx.load_model`` then ``strip_model``.

The model file is deleted afterwards unless ``--keep`` names where to put it (never commit it).
Targets: ``joulecast profile`` <= 300 MB peak RSS and <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
DENSE = ((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000))
CHUNK_BYTES = 16 * 1024 * 1024

from joulecast.protowire import encode_varint as _varint  # noqa: E402 (after sys.path)


def _field(number: int, body: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(body)) + body


def _vgg_graph() -> tuple[bytes, list[tuple[str, tuple[int, ...]]]]:
    """The graph without initializers, and the initializers' names and shapes."""
    from onnx import TensorProto, helper

    nodes, params = [], []
    x, channels = "x", 3
    for i, item in enumerate(VGG16):
        if item == "M":
            nodes.append(
                helper.make_node("MaxPool", [x], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2])
            )
            x = f"p{i}"
            continue
        w, b = f"conv{i}.weight", f"conv{i}.bias"
        params += [(w, (item, channels, 3, 3)), (b, (item,))]
        nodes.append(helper.make_node("Conv", [x, w, b], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x, channels = f"r{i}", item
    nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    x = "flat"
    for j, (fan_in, fan_out) in enumerate(DENSE):
        w, b = f"fc{j}.weight", f"fc{j}.bias"
        params += [(w, (fan_out, fan_in)), (b, (fan_out,))]
        nodes.append(helper.make_node("Gemm", [x, w, b], [f"g{j}"], transB=1))
        x = f"g{j}"
        if j < len(DENSE) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"gr{j}"]))
            x = f"gr{j}"
    graph = helper.make_graph(
        nodes,
        "vgg16",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 224, 224])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 1000])],
    )
    return graph.SerializeToString(), params


def write_vgg16(path: Path) -> int:
    """Write the model with random float32 weights embedded; returns its parameter count."""
    import numpy as np
    from onnx import TensorProto, helper

    graph_body, params = _vgg_graph()
    headers = []
    for name, shape in params:
        head = b"".join(_varint(1 << 3) + _varint(d) for d in shape)
        head += _varint(2 << 3) + _varint(TensorProto.FLOAT) + _field(8, name.encode())
        nbytes = 4 * int(np.prod(shape))
        tensor_len = len(head) + len(_varint(9 << 3 | 2)) + len(_varint(nbytes)) + nbytes
        headers.append((head, nbytes, _varint(5 << 3 | 2) + _varint(tensor_len)))
    graph_len = len(graph_body) + sum(
        len(prefix) + len(head) + len(_varint(9 << 3 | 2)) + len(_varint(n)) + n
        for head, n, prefix in headers
    )
    model = helper.make_model(
        helper.make_graph([], "", [], []), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ClearField("graph")
    rng = np.random.default_rng(0)
    with path.open("wb") as fh:
        fh.write(model.SerializeToString())
        fh.write(_varint(7 << 3 | 2) + _varint(graph_len) + graph_body)
        for head, nbytes, prefix in headers:
            fh.write(prefix + head + _varint(9 << 3 | 2) + _varint(nbytes))
            left = nbytes
            while left:
                n = min(left, CHUNK_BYTES)
                fh.write(rng.random(n // 4, dtype=np.float32).tobytes())
                left -= n
    return sum(int(np.prod(s)) for _, s in params)


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:4])}... failed: {err.strip()}")
    return wall_s, usage.ru_maxrss * 1024, out


def measure(cmd: list[str], env: dict[str, str], repeats: int) -> tuple[float, int, str]:
    runs = [run_once(cmd, env) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), max(r[1] for r in runs), runs[-1][2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also time onnx.load + strip")
    parser.add_argument("--keep", type=Path, help="move the model file here afterwards")
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.write:
        print(write_vgg16(args.write))
        return 0

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    folder = Path(tempfile.mkdtemp(prefix="joulecast-vgg-"))
    model = folder / "vgg16.onnx"
    try:
        start = time.perf_counter()
        # Written by a child process: a forked child inherits this process's peak RSS, so
        # this one stays small (no numpy, no onnx) for the figures below to be the commands'.
        params = int(
            subprocess.run(
                [sys.executable, __file__, "--write", str(model)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        size = model.stat().st_size
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"model: VGG-16-sized, {params:,} float32 parameters embedded, {size / 1e6:.0f} MB "
            f"(written in {time.perf_counter() - start:.1f} s)\n"
        )
        strip = (
            "import sys; from joulecast.weightless import strip_weights_file; "
            "print(len(strip_weights_file(sys.argv[1])))"
        )
        old = (
            "import sys, onnx; from joulecast.weightless import strip_model; "
            "m = onnx.load_model(sys.argv[1], load_external_data=False); "
            "print(len(strip_model(m).SerializeToString()))"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "joulecast.cli", "serve", "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        address = server.stdout.readline().split()[-1]
        cli = [sys.executable, "-m", "joulecast.cli"]
        commands = {
            "joulecast profile": [*cli, "profile", str(model)],
            "strip_weights_file alone": [sys.executable, "-c", strip, str(model)],
            "joulecast predict (client)": [*cli, "predict", str(model), "--server", address],
        }
        if args.compare:
            commands["old: onnx.load + strip_model"] = [sys.executable, "-c", old, str(model)]
        print(f"{'command':32} {'median s':>9} {'peak RSS MB':>12}  (median of {args.repeats})")
        results = {}
        try:
            for name, cmd in commands.items():
                wall_s, rss, out = measure(cmd, env, args.repeats)
                results[name] = (wall_s, rss)
                print(f"{name:32} {wall_s:9.2f} {rss / 1e6:12.1f}")
                if name == "strip_weights_file alone":
                    print(f"{'':32} weightless graph: {int(out):,} bytes")
        finally:
            server.terminate()
            server.wait(timeout=30)
        wall_s, rss = results["joulecast profile"]
        ok = wall_s <= 2.0 and rss <= 300e6
        print(
            f"\ntarget: profile <= 2 s and <= 300 MB: {'met' if ok else 'MISSED'} "
            f"({wall_s:.2f} s, {rss / 1e6:.0f} MB); load average after: "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        if args.keep:
            shutil.move(str(model), args.keep)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
