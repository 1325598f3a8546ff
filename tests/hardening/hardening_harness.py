"""Helpers shared by the hardening tests (a module of its own: ``from conftest import`` is
ambiguous with several test folders on ``sys.path``)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "joulecast_server_test_fixtures", ROOT / "tests" / "server" / "conftest.py"
)
server_fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = server_fixtures
_spec.loader.exec_module(server_fixtures)

TOKEN = server_fixtures.TOKEN
HARDWARE = "cpu-test"
SERVING = health_pb2.HealthCheckResponse.SERVING


def health_status(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


class OpenRecorder:
    """Records the path of every ``open``/``io.open``/``os.open`` and every ONNX external-data
    load in this process (passing the call through), so a test can prove a path was never
    opened."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def _record(self, path: object) -> None:
        with self._lock:
            self.paths.append(
                os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else repr(path)
            )

    def wrap(self, real: Callable) -> Callable:
        def recording(path, *args, **kwargs):
            self._record(path)
            return real(path, *args, **kwargs)

        return recording

    def external(self, *args, **kwargs) -> None:
        self._record(f"onnx-external-data:{args!r}")
        raise AssertionError("ONNX external data was loaded")

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return list(self.paths[mark:])

    def mark(self) -> int:
        with self._lock:
            return len(self.paths)


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    address: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL
        self.proc.wait(10)
