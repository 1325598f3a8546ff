"""The main job on the shipped default: start a server on the shipped predictor, ask it for a
prediction for the sample CRNN in ``examples/``, print it, stop the server.

Run with ``python -m joulecast.demo`` (``make demo``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
SHIPPED_HARDWARE = "cpu-amd-epyc"
ARTIFACTS = REPO / "artifacts"


def _joulecast(*args: str) -> list[str]:
    return [sys.executable, "-m", "joulecast.cli", *args]


def wait_for_address(server: subprocess.Popen[str], timeout_s: float) -> str:
    """Read the server's stdout until it says where it listens."""
    deadline = time.monotonic() + timeout_s
    assert server.stdout is not None
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line:
            if server.poll() is not None:
                raise SystemExit(f"the server exited with code {server.returncode}")
            continue
        print(f"server: {line.rstrip()}")
        if line.startswith("listening on "):
            return line.split("listening on ", 1)[1].strip()
    raise SystemExit(f"the server did not start within {timeout_s:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=str(SAMPLE), help="ONNX model to predict for")
    parser.add_argument("--artifacts", default=str(ARTIFACTS))
    parser.add_argument(
        "--hardware",
        default=SHIPPED_HARDWARE,
        help="the predictor to ask (default: the shipped CPU predictor; a demo that silently "
        "answered from another hardware because this one failed to load would mislead)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        _joulecast("serve", "--port", "0", "--artifacts", args.artifacts),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        address = wait_for_address(server, timeout_s=120)
        predict = ["predict", args.model, "--server", address, "--hardware", args.hardware]
        if args.json:
            predict.append("--json")
        return subprocess.run(_joulecast(*predict), env=env, cwd=REPO).returncode
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        print("server stopped")


if __name__ == "__main__":
    sys.exit(main())
