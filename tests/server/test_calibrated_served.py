"""A handful of rows of a catalogued GPU sent with AddMeasurements, then Retrain: the server
calibrates the transfer model on them (no per-hardware fit on so few networks) and answers that
GPU with tier calibrated, over a real gRPC server."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from client import convert as client_convert
from estimator.service import PredictorRegistry
from estimator.transfer import artifact
from joulecast.store import MeasurementStore
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

REPO = Path(__file__).parents[2]
ZEUS = REPO / "artifacts" / "measurements" / "zeus-nsdi23.db"
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
AUTH = bearer_metadata("s3cret-test-token")  # the `token` fixture of conftest.py


def v100_rows() -> list:
    """The first and last row of each training setup of five workloads of the V100 at its top
    power limit (ShuffleNet was trained with two optimizers), with their graphs."""
    with MeasurementStore(ZEUS, read_only=True) as store:
        rows = [r for r in store.rows(hardware="v100-pcie-32gb") if r.power_limit_w == 250.0]
        by_workload: dict[str, list] = {}
        for row in rows:
            if "sentiment140" not in row.config_id:
                by_workload.setdefault(row.config_id.rsplit("/", 2)[0], []).append(row)
        picked = [r for group in by_workload.values() for r in (group[0], group[-1])]
        return [(r, store.get_graph(r.graph_sha256)) for r in picked]


def test_add_measurements_then_retrain_calibrates_a_catalogued_gpu(start_server, tmp_path) -> None:
    artifacts, db = tmp_path / "artifacts", tmp_path / "m.db"
    (artifacts / "transfer").mkdir(parents=True)
    shutil.copy(artifact.path_in(REPO / "artifacts"), artifacts / "transfer")
    served = start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db
    )
    rows = v100_rows()
    sent = [client_convert.message_from_row(row, graph) for row, graph in rows]
    reply = served.stub.AddMeasurements(iter(sent), metadata=AUTH, timeout=60)
    assert reply.rejected == 0 and reply.accepted == len(rows) >= 10
    done = served.stub.Retrain(
        pb.RetrainRequest(hardware="v100-pcie-32gb"), metadata=AUTH, timeout=300
    )
    assert done.hardware == "v100-pcie-32gb" and done.selected == "train=gpu-transfer-calibrated"
    request = pb.PredictEnergyRequest(
        onnx_model=SAMPLE.read_bytes(), batch_size=64, samples=10_000, epochs=1,
        hardware="Tesla V100-PCIE-32GB",
    )  # fmt: skip
    answer = served.stub.PredictEnergy(request, timeout=30)
    assert answer.tier == "calibrated" and answer.predictor_version == done.version
    assert answer.train.available and answer.train.energy_low_j < answer.train.energy_j
    assert answer.train.energy_j < answer.train.energy_high_j
    assert f"{len(rows)} rows of 5 configurations" in answer.warnings[0]
    listed = served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10)
    assert [(p.hardware, p.version) for p in listed.predictors] == [
        ("v100-pcie-32gb", done.version)
    ]


CPU_STORE = REPO / "artifacts" / "measurements" / "cpu-amd-epyc.db"
CPU_SUITE = ("mlp-n1-h1024", "mlp-n4-h4096", "cnn-n2-h128", "cnn-n1-h512", "rnn-n1-h512")


def other_cpu_rows(factor: float) -> list:
    """The shipped EPYC rows of a few configurations (paper plan) as a CPU ``factor`` times as
    costly would have measured them, under the name ``cpu-other``."""
    with MeasurementStore(CPU_STORE, read_only=True) as store:
        rows = [
            r
            for r in store.rows(hardware="cpu-amd-epyc")
            if r.config_id in CPU_SUITE and r.plan == "paper"
        ]
        return [
            (
                dataclasses.replace(r, hardware="cpu-other", energy_j=r.energy_j * factor),
                store.get_graph(r.graph_sha256),
            )
            for r in rows
        ]


def test_add_measurements_then_retrain_carries_another_cpu(start_server, tmp_path) -> None:
    artifacts, db = tmp_path / "artifacts", tmp_path / "m.db"
    prior_dir = Path("predictors") / "cpu-amd-epyc"
    shutil.copytree(REPO / "artifacts" / prior_dir, artifacts / prior_dir)
    registry = PredictorRegistry(artifacts)
    served = start_server(registry=registry, artifacts_dir=artifacts, db_path=db)
    rows = other_cpu_rows(0.6)
    sent = [client_convert.message_from_row(row, graph) for row, graph in rows]
    reply = served.stub.AddMeasurements(iter(sent), metadata=AUTH, timeout=60)
    assert reply.rejected == 0 and reply.accepted == len(rows)
    done = served.stub.Retrain(pb.RetrainRequest(hardware="cpu-other"), metadata=AUTH, timeout=300)
    # a suite's worth of rows carries the served CPU predictor; none is fitted on them alone
    assert done.hardware == "cpu-other" and "carried" in done.selected

    def ask(hardware: str) -> pb.PredictEnergyResponse:
        request = pb.PredictEnergyRequest(
            onnx_model=SAMPLE.read_bytes(), batch_size=8, samples=1_000, epochs=1,
            hardware=hardware,
        )  # fmt: skip
        return served.stub.PredictEnergy(request, timeout=30)

    answer, prior = ask("cpu-other"), ask("cpu-amd-epyc")
    assert answer.predictor_version == done.version
    assert answer.train.energy_j >= answer.test.energy_j > 0
    # the CRNN is no suite configuration: the other CPU's factor carries to it
    assert 0.45 < answer.train.energy_j / prior.train.energy_j < 0.8
    assert 0.45 < answer.test.energy_j / prior.test.energy_j < 0.8
