"""Whole-process start-up of the ``joulecast`` command (one run; quote the figures it prints).

    .venv/bin/python benchmarks/bench_cli.py [--repeats 5] [--artifacts DIR]

Times, as the median of ``--repeats`` runs each, and peak RSS (the largest of the runs):

- ``python -c pass`` (the interpreter alone: the unit of the ratios),
- ``joulecast --help``,
- ``joulecast profile examples/sample_crnn.onnx`` (a 10 KB graph),
- ``joulecast predict examples/sample_crnn.onnx`` against a server this script starts
  (``joulecast serve --port 0``, shipped artifacts); the server's start-up is not timed.

Every command runs as ``python -m joulecast.cli ...`` in a fresh process, so a figure is what a
user waits for. Targets: ``--help`` <= 0.5 s, ``predict`` <= 1.0 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process; raises if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall_s = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.strip()}")
    return wall_s, usage.ru_maxrss * 1024


def measure(cmd: list[str], env: dict[str, str], repeats: int) -> tuple[float, int]:
    run_once(cmd, env)  # warm the page cache; not counted
    runs = [run_once(cmd, env) for _ in range(repeats)]
    return statistics.median(w for w, _ in runs), max(r for _, r in runs)


def start_server(env: dict[str, str], artifacts: Path | None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "joulecast.cli", "serve", "--port", "0"]
    if artifacts is not None:
        cmd += ["--artifacts", str(artifacts)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()  # "listening on 127.0.0.1:PORT"
    if not line.startswith("listening on "):
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, line.split()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--artifacts", type=Path, help="predictor artifacts (default: shipped)")
    args = parser.parse_args()

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = [sys.executable, "-m", "joulecast.cli"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"median of {args.repeats} runs per command, whole process\n")

    server, address = start_server(env, args.artifacts)
    try:
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "joulecast --help": [*cli, "--help"],
            "joulecast profile (10 KB graph)": [*cli, "profile", str(SAMPLE)],
            "joulecast predict (client)": [*cli, "predict", str(SAMPLE), "--server", address],
        }
        results = {name: measure(cmd, env, args.repeats) for name, cmd in commands.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)

    base_s = results["python -c pass"][0]
    print(f"{'command':34} {'median s':>9} {'x python':>9} {'peak RSS MB':>12}")
    for name, (wall_s, rss) in results.items():
        print(f"{name:34} {wall_s:9.3f} {wall_s / base_s:9.1f} {rss / 1e6:12.1f}")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    help_s = results["joulecast --help"][0]
    predict_s = results["joulecast predict (client)"][0]
    print(
        f"targets: --help {help_s:.2f} s (<= 0.5: {'met' if help_s <= 0.5 else 'MISSED'}), "
        f"predict {predict_s:.2f} s (<= 1.0: {'met' if predict_s <= 1.0 else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
