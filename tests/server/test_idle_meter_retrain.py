"""Retrain refuses rows whose meter saw an idle GPU, as `joulecast fit` does, through the fit's
child process: the server answers FAILED_PRECONDITION with the finding and serves nothing new."""

from __future__ import annotations

from pathlib import Path

import grpc

from estimator.service import PredictorRegistry
from joulecast.cli import main
from rpc.auth import bearer_metadata
from rpc.generated import estimator_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
GETZNER = ROOT / "tests" / "data" / "getzner2023-gpu" / "00_linear-every50th.csv"
TOKEN = "s3cret-test-token"  # the token start_server gives its servers (conftest.py)


def test_retrain_refuses_an_idle_gpus_rows(
    start_server, rpc_error, tmp_path: Path, monkeypatch, capsys
) -> None:
    db = tmp_path / "m.db"
    argv = ["import", str(GETZNER), "--db", str(db), "--hardware", "rtx-2080-ti-x"]
    argv += ["--energy", "gpu_energy", "--phase", "test"]
    argv += ["--graph-template", "Linear(in_features={input_size},out_features={output_size})"]
    argv += ["--set", "batch_size={batch_size}", "--set", "samples={forward_passes}*{batch_size}"]
    argv += ["--set", "repeat={rep_no}", "--set", "config_id=g/{input_size}-{output_size}"]
    assert main(argv) == 0
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    served = start_server(
        registry=PredictorRegistry(artifacts), artifacts_dir=artifacts, db_path=db
    )
    code, details = rpc_error(
        served.stub.Retrain,
        pb.RetrainRequest(hardware="rtx-2080-ti-x"),
        metadata=bearer_metadata(TOKEN),
        timeout=120,
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert "rtx-2080-ti-x (test): the meter did not see the work" in details
    assert not (artifacts / "predictors" / "rtx-2080-ti-x").exists()
    # the operator's override reaches the fit: past the idle-meter check, these 30 test rows
    # of ten layers fit, and the canary keeps the version aside (it answers no canary graph)
    code, details = rpc_error(
        served.stub.Retrain,
        pb.RetrainRequest(hardware="rtx-2080-ti-x", allow_idle_meter=True),
        metadata=bearer_metadata(TOKEN),
        timeout=120,
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION, details
    assert "did not see the work" not in details and "kept aside" in details
    # and the command line's flag is that override
    monkeypatch.setenv("JOULECAST_TOKEN", TOKEN)
    capsys.readouterr()
    argv = ["retrain", "--hardware", "rtx-2080-ti-x", "--server", served.address]
    assert main(argv) != 0
    assert "did not see the work" in capsys.readouterr().err
    assert main([*argv, "--allow-idle-meter"]) != 0
    assert "kept aside" in capsys.readouterr().err
