"""Fixtures of the server tests: real weightless graphs of each family, a real in-process
server on a free port, and a real stub."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import torch
from testkit import a_row, config_fields
from torch import nn

from collector.models import INPUT_SHAPE, ModelConfig, build_model
from estimator.description import PredictorDescription
from estimator.service import EnergyPrediction, PhaseEstimate
from joulecast.errors import FailedPrecondition
from joulecast.graph import profile_graph
from joulecast.measurement import Row, is_estimate
from joulecast.weightless import export_weightless
from rpc.generated import estimator_pb2_grpc as pb_grpc
from server.app import RunningServer, serve
from server.settings import ServerSettings

TOKEN = "s3cret-test-token"
SMALL_CONFIGS = {
    "mlp": ModelConfig("mlp", (1,), (64,)),
    "cnn": ModelConfig("cnn", (1,), (8,)),
    "rnn": ModelConfig("rnn", (1,), (32,)),
    "crnn": ModelConfig("crnn", (1, 1), (16, 16)),
}


class TinyAttention(nn.Module):
    """Self-attention over the 64 frames: a model of the 'transformer' family."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(128, 32)
        self.attn = nn.MultiheadAttention(32, 2, batch_first=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.proj(x.squeeze(1).transpose(1, 2))
        mixed, _ = self.attn(seq, seq, seq)
        return torch.sigmoid(self.head(mixed.mean(1)))


def weightless(config: ModelConfig) -> bytes:
    torch.manual_seed(0)
    return export_weightless(build_model(config).eval(), torch.zeros(1, *INPUT_SHAPE))


@pytest.fixture(scope="session")
def family_graphs() -> dict[str, bytes]:
    """Weightless graphs: one small model of each family, and a tiny attention model."""
    graphs = {family: weightless(config) for family, config in SMALL_CONFIGS.items()}
    torch.manual_seed(0)
    graphs["transformer"] = export_weightless(TinyAttention().eval(), torch.zeros(1, *INPUT_SHAPE))
    return graphs


class FakeRegistry:
    """The registry contract with a fixed formula: energy = 1e-9 J per FLOP, no test phase
    for the 'transformer' family (so that an unavailable phase is exercised)."""

    def __init__(self, hardware: str = "cpu-test", source: str = "estimate-tdp") -> None:
        self.default_hardware = hardware
        self.versions = {hardware: "v1"}
        self.source = source

    def hardware(self) -> list[str]:
        return sorted(self.versions)

    def predict(
        self,
        profile: Any,
        *,
        batch_size: int,
        samples: int,
        epochs: int,
        hardware: str | None = None,
        observed_gpu_util: float | None = None,
        layer_answer: Any = None,
    ) -> EnergyPrediction:
        hw = hardware or self.default_hardware
        if hw not in self.versions:
            raise FailedPrecondition(
                f"no predictor for hardware {hw!r}; available: {self.hardware()}"
            )
        train_j = 1e-9 * profile.flops_train * samples * epochs
        test_j = 1e-9 * profile.flops_forward * samples
        phase = lambda e: PhaseEstimate(e, 0.5 * e, 2 * e, e / 100, "fake")  # noqa: E731
        return EnergyPrediction(
            train=phase(train_j),
            test=None if profile.family == "transformer" else phase(test_j),
            hardware=hw,
            predictor_version=self.versions[hw],
            energy_source=self.source,
            energy_is_estimate=is_estimate(self.source),
            warnings=("fake predictor",),
        )

    def reload(self, hardware: str) -> str:
        return self.versions[hardware]

    def describe(self) -> list[PredictorDescription]:
        return [fake_description(h, v, self.source) for h, v in self.versions.items()]


def fake_description(hardware: str, version: str, source: str) -> PredictorDescription:
    """What ListPredictors reports of a fake predictor: ``fake`` answers both phases."""
    return PredictorDescription(
        hardware=hardware,
        version=version,
        created_at="",
        energy_source=source,
        energy_is_estimate=is_estimate(source),
        phases=("train", "test"),
        families={},
        selected={"train": "fake", "test": "fake"},
        fallback_unseen_family={},
        scores={},
        dataset={},
        domain={},
        notes=(),
    )


@dataclass
class Served:
    running: RunningServer
    port: int
    channel: grpc.Channel
    stub: pb_grpc.EnergyEstimatorStub
    settings: ServerSettings

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start a real server on a free port (``start_server(registry=..., **settings)``)."""
    started: list[Served] = []

    def start(*, registry: Any = None, fit: Any = None, **overrides: Any) -> Served:
        fields = {
            "artifacts_dir": tmp_path / "artifacts",
            "port": 0,
            "grace_s": 0.5,
            "token": TOKEN,
        }
        fields.update(overrides)
        settings = ServerSettings(**fields)
        running, port = serve(settings, registry=registry or FakeRegistry(), fit=fit)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        served = Served(running, port, channel, pb_grpc.EnergyEstimatorStub(channel), settings)
        started.append(served)
        return served

    yield start
    for served in started:
        served.channel.close()
        served.running.shutdown(0).wait(5)


def replace(obj: Any, **changes: Any) -> Any:
    return dataclasses.replace(obj, **changes)


SWEEP = {
    "mlp": [ModelConfig("mlp", (1,), (h,)) for h in (32, 64, 128)],
    "cnn": [ModelConfig("cnn", (1,), (h,)) for h in (4, 8, 16)],
    "rnn": [ModelConfig("rnn", (1,), (h,)) for h in (16, 32, 64)],
    "crnn": [ModelConfig("crnn", (1, 1), (h, h)) for h in (8, 16, 32)],
}


@pytest.fixture(scope="session")
def sweep_graphs() -> dict[str, bytes]:
    """config_id -> weightless graph, for a small sweep of every family."""
    return {c.config_id: weightless(c) for configs in SWEEP.values() for c in configs}


def measured_rows(
    sweep_graphs: dict[str, bytes],
    hardware: str,
    *,
    scale: float = 1.0,
    tag: str = "a",
    source: str = "rapl",
) -> list[tuple[Row, bytes]]:
    """Rows of the sweep with energies from a formula (J = scale x 2e-9 x FLOPs, labelled as
    ``source`` read them: RAPL unless told): what a collector would send, without measuring."""
    rows = []
    for configs in SWEEP.values():
        for config in configs:
            graph = sweep_graphs[config.config_id]
            profile = profile_graph(graph)
            for phase in ("train", "test"):
                flops = profile.flops_train if phase == "train" else profile.flops_forward
                samples = 64
                energy = scale * 2e-9 * flops * samples * (1.0 + 0.01 * len(config.config_id) % 3)
                rows.append(
                    (
                        a_row(
                            f"{tag}/{hardware}/{config.config_id}/{phase}/0",
                            plan="server-test",
                            **config_fields(config),
                            variant="",
                            phase=phase,
                            samples=samples,
                            hardware=hardware,
                            duration_s=energy / 40 + 0.01,
                            energy_j=energy,
                            energy_source=source,
                            energy_is_estimate=is_estimate(source),
                            idle_power_w=10.0,
                            graph_sha256=hashlib.sha256(graph).hexdigest(),
                        ),
                        graph,
                    )
                )
    return rows


@pytest.fixture(scope="session")
def make_rows(sweep_graphs: dict[str, bytes]) -> Callable[..., list[tuple[Row, bytes]]]:
    """``make_rows(hardware, scale=..., tag=...)``: see :func:`measured_rows`."""
    return lambda hardware, **kw: measured_rows(sweep_graphs, hardware, **kw)


@pytest.fixture
def rpc_error() -> Callable[..., tuple[grpc.StatusCode, str]]:
    """``rpc_error(call, *args, **kwargs)`` -> (status code, details) of a call that must fail."""

    def call_and_fail(
        call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as info:
            call(*args, **kwargs)
        return info.value.code(), info.value.details()

    return call_and_fail


@pytest.fixture
def token() -> str:
    """The token every ``start_server`` server (and the CLI test's server) accepts."""
    return TOKEN
