"""The shipped xeon-gold-5120-2c predictor through a real server: a whole CNN written in torch
is answered by layer-sum for the test phase, train is unavailable, rtx2080ti does not exist."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from estimator.service import PredictorRegistry
from rpc.generated import estimator_pb2 as pb
from tests.estimator.layerwise.nets import alexnet_like, graph

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def registry() -> PredictorRegistry:
    return PredictorRegistry(REPO / "artifacts")


def _request(hardware: str, batch: int = 32) -> pb.PredictEnergyRequest:
    return pb.PredictEnergyRequest(
        onnx_model=graph(alexnet_like()),
        batch_size=batch,
        samples=batch * 10,
        epochs=1,
        hardware=hardware,
    )


def test_a_cnn_is_answered_by_layer_sum_in_measured_cpu_joules(start_server, registry) -> None:
    served = start_server(registry=registry, artifacts_dir=REPO / "artifacts")
    reply = served.stub.PredictEnergy(_request("xeon-gold-5120-2c"), timeout=60)
    assert reply.energy_source == "codecarbon-intel-rapl" and not reply.energy_is_estimate
    assert reply.test.available and reply.test.predictor == "layer-sum"
    assert reply.test.energy_low_j < reply.test.energy_j < reply.test.energy_high_j
    power = reply.test.energy_j / reply.test.duration_s
    assert 50 < power < 105  # the package's measured range, below its TDP
    assert not reply.train.available
    assert any("no train measurements" in w for w in reply.warnings)
    assert any("Relu" in w and "per byte" in w for w in reply.warnings)
    ten_more = served.stub.PredictEnergy(_request("xeon-gold-5120-2c", 64), timeout=60)
    assert ten_more.test.energy_j > reply.test.energy_j


def test_an_rtx2080ti_is_transferred_and_an_unknown_board_is_not_found(
    start_server, registry
) -> None:
    """The RTX 2080 Ti has no measurements: it used to be NOT_FOUND; the GPU catalog knows it,
    so the transfer model answers its training phase and says so. A board neither the
    predictors nor the catalog know is still NOT_FOUND, with what exists."""
    served = start_server(registry=registry, artifacts_dir=REPO / "artifacts")
    reply = served.stub.PredictEnergy(_request("rtx2080ti"), timeout=30)
    assert reply.tier == "transferred" and reply.hardware == "rtx-2080-ti"
    assert reply.train.available and not reply.test.available
    with pytest.raises(grpc.RpcError) as info:
        served.stub.PredictEnergy(_request("rtx9999"), timeout=30)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    details = info.value.details()
    assert "rtx9999" in details and "xeon-gold-5120-2c" in details and "cpu-amd-epyc" in details
    assert "joulecast hardware" in details
