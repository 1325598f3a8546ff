"""In-process answers are a real server's answers, number for number.

A real gRPC server on a free port (its profiling worker pool included) and
``joulecast.Estimator()`` both serve the shipped artifacts; the same questions about the sample
CRNN, a transformer and an MLP built here, on every published hardware, with and without carbon
and cost, must get equal :class:`~joulecast.Prediction` records (floats compared exactly).
Refusals must be the same kinds of project errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

import joulecast
from estimator.service import PredictorRegistry
from joulecast.api.graphs import weightless_graph
from joulecast.errors import InvalidArgument, JoulecastError, NotFound, ResourceLimit
from server.app import serve
from server.settings import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"
INPUT = (1, 1, 128, 64)
"""One clip of the paper's input: 128 mel bands x 64 frames."""


class Tagger(nn.Module):
    """A small transformer encoder over the 64 frames (the 'transformer' family)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(128, 64)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.proj(x.squeeze(1).transpose(1, 2))
        return torch.sigmoid(self.head(self.encoder(frames).mean(1)))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(128 * 64, 256), nn.ReLU(), nn.Linear(256, 10))


@pytest.fixture(scope="module")
def graphs() -> dict[str, bytes]:
    torch.manual_seed(0)
    example = torch.zeros(INPUT)
    return {
        "crnn": weightless_graph(str(SAMPLE)),
        "transformer": weightless_graph(Tagger().eval(), example),
        "mlp": weightless_graph(mlp().eval(), example),
    }


@pytest.fixture(scope="module")
def remote() -> Iterator[joulecast.Estimator]:
    """A real server on a free port (as ``joulecast serve`` starts it, worker pool included)
    on the shipped artifacts, and an Estimator that asks it."""
    settings = ServerSettings(artifacts_dir=ARTIFACTS, port=0, grace_s=0.5)
    running, port = serve(settings, registry=PredictorRegistry(ARTIFACTS))
    try:
        with joulecast.Estimator(server=f"127.0.0.1:{port}") as estimator:
            yield estimator
    finally:
        running.shutdown(0).wait(5)


HARDWARE = PredictorRegistry(ARTIFACTS).hardware()
UNMEASURED_GPU = "tesla-t4"
"""A catalogued GPU with no predictor: the transfer model answers it."""
QUESTIONS = (
    {"batch_size": 8, "samples": 1578, "epochs": 1},
    {"batch_size": 32, "samples": 50_000, "epochs": 10, "region": "FRA", "price_per_kwh": 0.25},
)


def test_every_published_hardware_answers_the_same_here_and_remotely(graphs, remote) -> None:
    assert len(HARDWARE) >= 4
    local = joulecast.Estimator()
    families = set()
    for name, graph in graphs.items():
        for hardware in HARDWARE:
            for question in QUESTIONS:
                here = local.predict(graph, hardware=hardware, **question)
                there = remote.predict(graph, hardware=hardware, **question)
                assert here == there, (name, hardware, question)
                assert here.to_dict() == there.to_dict()
                families.add(here.family)
    assert families == {"crnn", "transformer", "mlp"}


def test_a_transferred_gpu_and_a_power_limit_answer_the_same(graphs, remote) -> None:
    assert UNMEASURED_GPU not in HARDWARE
    local = joulecast.Estimator()
    for hardware, limit in ((UNMEASURED_GPU, None), (UNMEASURED_GPU, 50.0), ("h200", 400.0)):
        for graph in graphs.values():
            question = {"hardware": hardware, "power_limit_w": limit, "region": "FRA"}
            here = local.predict(graph, batch_size=64, **question)
            assert here == remote.predict(graph, batch_size=64, **question)
            if limit is not None:  # None: the board's default, which the answer states
                assert here.power_limit_w == limit
        assert here.tier == ("transferred" if hardware == UNMEASURED_GPU else "measured")


def test_mixed_precision_answers_the_same_here_and_remotely(graphs, remote) -> None:
    local = joulecast.Estimator()
    for graph in graphs.values():
        question = {"hardware": UNMEASURED_GPU, "precision": "amp-fp16", "batch_size": 64}
        here = local.predict(graph, **question)
        assert here == remote.predict(graph, **question)
        assert here.precision == "amp-fp16" and here.to_dict()["precision"] == "amp-fp16"


def test_a_module_and_the_default_hardware_answer_the_same(remote) -> None:
    torch.manual_seed(0)
    module, example = Tagger().eval(), torch.zeros(INPUT)
    here = joulecast.Estimator().predict(module, example, region="DEU")
    there = remote.predict(module, example, region="DEU")
    assert here == there
    assert here.family == "transformer" and here.train is not None
    assert here.co2_g == pytest.approx(here.train.co2_g + here.test.co2_g)
    assert here.train.energy_j > here.test.energy_j > 0


@pytest.mark.parametrize(
    ("options", "kind"),
    [
        ({"hardware": "no-such-gpu"}, NotFound),
        ({"region": "ATLANTIS"}, InvalidArgument),
        ({"batch_size": 10**9}, InvalidArgument),
        ({"price_per_kwh": -1.0}, InvalidArgument),
    ],
)
def test_refusals_are_the_same_project_errors(graphs, remote, options, kind) -> None:
    errors = []
    for estimator in (joulecast.Estimator(), remote):
        with pytest.raises(kind) as info:
            estimator.predict(graphs["mlp"], **options)
        errors.append(info.value)
    assert str(errors[0]).split(";")[0] in str(errors[1])


def test_a_graph_over_the_servers_limit_is_refused_here_too(graphs) -> None:
    from joulecast.api.local import InProcessClient

    small = ServerSettings(artifacts_dir=ARTIFACTS, max_graph_bytes=2048)
    with pytest.raises(ResourceLimit, match="limit"):
        InProcessClient(ARTIFACTS, settings=small).predict(graphs["transformer"])


def test_an_unreachable_server_is_a_project_error() -> None:
    estimator = joulecast.Estimator(server="127.0.0.1:1", timeout_s=0.5)
    with pytest.raises(JoulecastError, match="cannot reach the server"):
        estimator.predict(str(SAMPLE))
