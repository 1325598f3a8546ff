"""The CLI end to end, as subprocesses: serve, add-measurements, retrain, predict, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest

from joulecast.store import MeasurementStore

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"


def joulecast() -> list[str]:
    """The ``joulecast`` command, run with this interpreter."""
    return [sys.executable, "-m", "joulecast.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*joulecast(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env
    )


@pytest.fixture
def server(tmp_path: Path, token: str) -> Iterator[tuple[str, Path, subprocess.Popen[str], str]]:
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    (tmp_path / "artifacts").mkdir()  # serve refuses a missing artifacts folder
    env = {k: v for k, v in os.environ.items() if k != "JOULECAST_TOKEN"}
    proc = subprocess.Popen(
        [
            *joulecast(),
            "serve",
            "--port",
            "0",
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--db",
            str(tmp_path / "server.db"),
            "--token-file",
            str(token_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, proc.stderr.read() if proc.poll() else "")
        yield line.split()[-1], token_file, proc, token
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_retrain_of_estimated_rows_says_so(server, make_rows, tmp_path: Path) -> None:
    """A version fitted on CPU-time estimates is announced as an estimate, in text and JSON."""
    address, token_file, _, _ = server
    store_path = tmp_path / "estimated.db"
    with MeasurementStore(store_path) as store:
        rows = make_rows("cpu-est", source="estimate-cpu-time")
        for _, graph in rows:
            store.put_graph(graph)
        store.put_rows([(row, ()) for row, _ in rows])
    auth = ["--server", address, "--token-file", str(token_file)]
    added = run("add-measurements", str(store_path), *auth)
    assert added.returncode == 0, added.stderr
    # sent again (after a partial failure, say): nothing to do, said once, not row by row
    again = run("add-measurements", str(store_path), *auth)
    assert again.returncode == 0, again.stderr
    assert f"0 rows accepted, {len(rows)} rejected" in again.stdout
    assert f"{len(rows)} rows were already stored" in again.stdout
    assert "rejected " not in again.stdout.replace(f"{len(rows)} rejected", "")
    # a retrain waits for its fit unless --timeout says how long
    hurried = run("retrain", "--hardware", "cpu-est", *auth, "--timeout", "0.05")
    assert hurried.returncode != 0 and "DEADLINE_EXCEEDED" in hurried.stderr, hurried.stderr
    as_json = run("retrain", "--hardware", "cpu-est", *auth, "--json")
    assert as_json.returncode == 0, as_json.stderr
    reply = json.loads(as_json.stdout)
    assert reply["energy_source"] == "estimate-cpu-time" and reply["energy_is_estimate"] is True
    as_text = run("retrain", "--hardware", "cpu-est", *auth)
    assert as_text.returncode == 0, as_text.stderr
    assert "energy is ESTIMATED (estimate-cpu-time)" in as_text.stdout


def test_cli_end_to_end(server, make_rows, tmp_path: Path) -> None:
    address, token_file, proc, token = server
    store_path = tmp_path / "collected.db"
    with MeasurementStore(store_path) as store:
        rows = make_rows("cpu-test")
        for _, graph in rows:
            store.put_graph(graph)
        store.put_rows([(row, ()) for row, _ in rows])

    no_token = run("add-measurements", str(store_path), "--server", address)
    assert no_token.returncode != 0 and "UNAUTHENTICATED" in no_token.stderr

    added = run(
        "add-measurements",
        str(store_path),
        "--server",
        address,
        "--token-file",
        str(token_file),
        "--json",
    )
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["accepted"] == len(rows)

    env = {**os.environ, "JOULECAST_TOKEN": token}
    retrained = run("retrain", "--hardware", "cpu-test", "--server", address, "--json", env=env)
    assert retrained.returncode == 0, retrained.stderr
    reply = json.loads(retrained.stdout)
    version = reply["version"]
    assert reply["energy_source"] == "rapl" and reply["energy_is_estimate"] is False

    predicted = run("predict", str(SAMPLE), "--server", address, "--json")
    assert predicted.returncode == 0, predicted.stderr
    out = json.loads(predicted.stdout)
    for key in (
        "family",
        "params",
        "flops_forward",
        "flops_train",
        "train",
        "test",
        "hardware",
        "predictor_version",
        "energy_source",
        "warnings",
    ):
        assert key in out
    assert out["family"] == "crnn" and out["predictor_version"] == version
    assert out["hardware"] == "cpu-test" and out["energy_source"] == "rapl"
    for phase in ("train", "test"):
        assert {"energy_j", "energy_low_j", "energy_high_j", "duration_s"} <= set(out[phase])
        assert out[phase]["energy_low_j"] <= out[phase]["energy_j"] <= out[phase]["energy_high_j"]
    assert out["uploaded_bytes"] < SAMPLE.stat().st_size / 5  # weights were stripped

    # A model saved with external data: the data file is never read (here it is gone).
    model = onnx.load(str(SAMPLE))
    external = tmp_path / "external.onnx"
    onnx.save_model(
        model, str(external), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    (tmp_path / "weights.bin").unlink()
    streamed = run("predict", str(external), "--server", address, "--json", "--stream")
    assert streamed.returncode == 0, streamed.stderr
    assert json.loads(streamed.stdout)["train"] == out["train"]

    table = run("predict", str(SAMPLE), "--server", address, "--epochs", "3")
    assert table.returncode == 0, table.stderr
    assert "crnn" in table.stdout and "kWh" in table.stdout and version in table.stdout

    wrong = run("predict", str(SAMPLE), "--server", address, "--hardware", "tpu-v9")
    assert wrong.returncode != 0 and "tpu-v9" in wrong.stderr and "cpu-test" in wrong.stderr

    missing = run("predict", str(tmp_path / "nope.onnx"), "--server", address)
    assert missing.returncode != 0 and "no such file" in missing.stderr

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert token not in proc.stderr.read()
