"""Any catalogued GPU answered by the shipped transfer model, over a real gRPC server; power
limits and batch-size tables through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from client.format import format_prediction
from client.remote import EstimatorClient
from estimator.service import PredictorRegistry
from joulecast.cli import main
from joulecast.graph import profile_graph
from joulecast.hardware import find_gpu
from rpc.generated import estimator_pb2 as pb

REPO = Path(__file__).parents[2]
SAMPLE = REPO / "examples" / "sample_crnn.onnx"


@pytest.fixture(scope="module")
def registry() -> PredictorRegistry:
    return PredictorRegistry(REPO / "artifacts")


def test_a_gpu_nobody_measured_is_transferred_and_says_so(registry) -> None:
    assert registry.transfer is not None
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=64, samples=50_000, epochs=2,
        hardware="Tesla T4",
    )  # fmt: skip
    assert answer.tier == "transferred" and answer.hardware == "tesla-t4"
    assert answer.test is None and answer.train is not None
    assert any("no measurement of this GPU" in w for w in answer.warnings)
    assert any("answered for FP32 training" in w for w in answer.warnings)
    train = answer.train
    assert train.energy_low_j < train.energy_j < train.energy_high_j
    assert train.energy_j == pytest.approx(train.power_w * train.duration_s)
    spec = find_gpu("tesla-t4")
    assert spec is not None and train.power_w <= spec.power_limit_w
    assert answer.power_limit_w == spec.power_limit_w
    assert not answer.energy_is_estimate and "estimate" not in answer.energy_source


def test_a_gpu_the_model_was_fitted_on_is_answered_as_measured(registry) -> None:
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=64, samples=50_000, epochs=1,
        hardware="Tesla V100-PCIE-32GB",
    )  # fmt: skip
    assert answer.tier == "measured" and answer.hardware == "v100-pcie-32gb"
    assert not any("no measurement" in w for w in answer.warnings)


def test_power_limits_move_energy_and_are_checked(registry) -> None:
    profile = profile_graph(SAMPLE.read_bytes())
    ask = {"batch_size": 512, "samples": 1_000_000, "epochs": 1, "hardware": "a100-sxm4-40gb"}
    full = registry.predict(profile, **ask)
    low = registry.predict(profile, power_limit_w=120.0, **ask)
    assert low.power_limit_w == 120.0 and low.train.power_w <= 120.0
    assert low.train.duration_s >= full.train.duration_s
    with pytest.raises(Exception, match="power_limit_w must lie in"):
        registry.predict(profile, power_limit_w=5000.0, **ask)
    with pytest.raises(Exception, match="applies to a catalogued GPU"):
        registry.predict(profile, power_limit_w=100.0, **{**ask, "hardware": "cpu-amd-epyc"})


def test_the_server_answers_a_catalogued_gpu_and_refuses_a_bad_limit(start_server) -> None:
    served = start_server(registry=PredictorRegistry(REPO / "artifacts"))
    with EstimatorClient(served.address) as client:
        reply = client.predict(SAMPLE.read_bytes(), hardware="NVIDIA A40", batch_size=32)
        assert reply.tier == "transferred" and reply.hardware == "a40"
        assert reply.as_dict()["tier"] == "transferred" and reply.test is None
        assert "(transferred, power limit 300 W)" in format_prediction(reply, "sample_crnn.onnx")
    request = pb.PredictEnergyRequest(
        onnx_model=SAMPLE.read_bytes(), batch_size=8, samples=100, epochs=1, hardware="a40",
        power_limit_w=10_000.0,
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        served.stub.PredictEnergy(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "power_limit_w" in err.value.details()


def test_the_cli_sweeps_batch_sizes_and_marks_the_cheapest(start_server, capsys) -> None:
    served = start_server(registry=PredictorRegistry(REPO / "artifacts"))
    argv = ["predict", str(SAMPLE), "--server", served.address, "--hardware", "Tesla T4"]
    argv += ["--batch-sizes", "8,64,256", "--samples", "50000", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tier"] == "transferred" and [r["batch_size"] for r in out["rows"]] == [8, 64, 256]
    energies = {r["batch_size"]: r["train"]["energy_j"] for r in out["rows"]}
    assert out["cheapest"]["batch_size"] == min(energies, key=energies.get)
    assert main(argv[:-1]) == 0
    table = capsys.readouterr().out
    assert "least train energy: batch" in table and "transferred" in table
    # a limit above what the board draws changes nothing: the tie is said, not hidden
    assert main([*argv[:-1], "--power-limits", "60,70"]) == 0
    table = capsys.readouterr().out
    assert "(the same at 70 W: the board draws less than each limit)" in table
    assert main([*argv, "--power-limits", "60,70"]) == 0
    cheapest = json.loads(capsys.readouterr().out)["cheapest"]
    assert cheapest["power_limit_w"] == 60 and cheapest["same_energy_at_power_limits_w"] == [70]


def test_a_sweep_of_an_estimated_predictor_says_so(start_server, capsys) -> None:
    """The shipped CPU predictor learned from CPU-time estimates: a batch-size table of it says
    ESTIMATED and names the source, and never calls its rows measured."""
    served = start_server(registry=PredictorRegistry(REPO / "artifacts"))
    argv = ["predict", str(SAMPLE), "--server", served.address, "--hardware", "cpu-amd-epyc"]
    argv += ["--batch-sizes", "8,32"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "energy source estimate-cpu-time" in table and "ESTIMATED" in table
    assert "measured)" not in table
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["energy_is_estimate"] is True and out["energy_source"] == "estimate-cpu-time"
    assert all(r["energy_is_estimate"] for r in out["rows"])


def test_mixed_precision_is_asked_over_the_wire_and_answered_by_the_transfer_model(
    start_server,
) -> None:
    served = start_server(registry=PredictorRegistry(REPO / "artifacts"))
    graph = SAMPLE.read_bytes()
    ask = {"batch_size": 256, "samples": 50_000, "hardware": "Tesla T4"}
    with EstimatorClient(served.address) as client:
        fp32 = client.predict(graph, **ask)
        amp = client.predict(graph, precision="amp-fp16", **ask)
        streamed = client.predict(graph, precision="amp-fp16", stream=True, **ask)
        measured = client.predict(graph, precision="amp-fp16", **{**ask, "hardware": "h200"})
    assert fp32.precision == "fp32" and amp.precision == "amp-fp16"
    assert any("answered for FP32 training" in w for w in fp32.warnings)
    assert any("amp-fp16 mixed precision" in w and "DeepSpeech2" in w for w in amp.warnings)
    # Tensor cores make the same epoch shorter, never longer; the cache keys on precision.
    assert amp.train.duration_s < fp32.train.duration_s
    assert amp.train.energy_j < fp32.train.energy_j
    assert streamed.train.energy_j == amp.train.energy_j
    assert "(transferred, power limit 70 W, amp-fp16)" in format_prediction(amp, "sample_crnn.onnx")
    # The H200's own predictor learned FP32 runs: mixed precision is the transfer model's.
    assert measured.tier == "transferred" and measured.test is None
    assert "fitted on FP32 runs" in measured.warnings[0]
    for hardware, precision, why in (
        ("Tesla T4", "amp-bf16", "needs BF16 tensor cores"),
        ("cpu-amd-epyc", "amp-fp16", "catalogued GPU"),
        ("Tesla T4", "fp64", "precision must be one of"),
    ):
        request = pb.PredictEnergyRequest(
            onnx_model=graph, batch_size=8, samples=100, epochs=1, hardware=hardware,
            precision=precision,
        )  # fmt: skip
        with pytest.raises(grpc.RpcError) as err:
            served.stub.PredictEnergy(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert why in err.value.details()


def _mlp_graph() -> bytes:
    # matrix products alone: what TF32 matrix products change
    import torch

    from collector.models import INPUT_SHAPE, ModelConfig, build_model
    from joulecast.weightless import export_weightless

    torch.manual_seed(0)
    model = build_model(ModelConfig("mlp", (4,), (4096,)))
    return export_weightless(model, torch.zeros(1, *INPUT_SHAPE))


def test_tf32_matrix_products_are_asked_over_the_wire(start_server) -> None:
    served = start_server(registry=PredictorRegistry(REPO / "artifacts"))
    graph = _mlp_graph()
    ask = {"batch_size": 256, "samples": 50_000}
    with EstimatorClient(served.address) as client:
        fp32 = client.predict(graph, hardware="a100-sxm4-40gb", **ask)
        tf32 = client.predict(graph, hardware="a100-sxm4-40gb", precision="tf32", **ask)
        t4 = client.predict(graph, hardware="Tesla T4", precision="tf32", **ask)
        h200 = client.predict(graph, hardware="h200", precision="tf32", **ask)
        v100 = client.predict(graph, hardware="v100-pcie-32gb", precision="tf32", **ask)
    # An A100 runs TF32 matrix products on tensor cores: the same epoch is shorter.
    assert tf32.precision == "tf32" and tf32.tier == "transferred"
    assert tf32.train.duration_s < 0.9 * fp32.train.duration_s
    assert any("TF32 tensor cores" in w and "no fitted GPU" in w for w in tf32.warnings)
    # A T4 has no TF32: asked for it, it is answered, and said to be, FP32.
    assert t4.precision == "fp32"
    assert any("has no TF32 tensor cores" in w for w in t4.warnings)
    # The H200's own predictor learned FP32 runs: TF32 is the transfer model's answer.
    assert h200.tier == "transferred" and h200.precision == "tf32"
    assert "fitted on FP32 runs" in h200.warnings[0]
    # A V100 has no TF32: answered as measured, for FP32, and says why.
    assert v100.tier == "measured" and v100.precision == "fp32"
    assert any("has no TF32 tensor cores" in w for w in v100.warnings)
