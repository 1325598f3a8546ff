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
from pathlib import Path

from server.spawn import LISTENING, start_serve

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
SHIPPED_HARDWARE = "cpu-amd-epyc"
ARTIFACTS = REPO / "artifacts"


def _joulecast(*args: str) -> list[str]:
    return [sys.executable, "-m", "joulecast.cli", *args]


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
    server, address = start_serve("--artifacts", args.artifacts, cwd=REPO, env=env, wait_s=120)
    try:
        if address is None:
            code = server.poll()
            raise SystemExit(
                f"the server exited with code {code}"
                if code is not None
                else "the server did not start within 120 s"
            )
        print(f"server: {LISTENING}{address}")
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
