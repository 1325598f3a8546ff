"""`joulecast predict` for a torch module (`--torch MODULE:FACTORY --input-shape`) and in-process
(`--local`, `--artifacts`): the same answer as ``joulecast.Estimator``; and its refusals."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import joulecast
from joulecast.cli import main
from joulecast.predict_cli import listening

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"
FACTORY = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))
"""


def joulecast_predict(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "joulecast.cli", "predict", *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def factory_dir(tmp_path: Path) -> Path:
    (tmp_path / "mymodels.py").write_text(FACTORY)
    return tmp_path


def test_a_factorys_module_gets_the_estimators_answer(factory_dir: Path) -> None:
    done = joulecast_predict(
        "--torch", "mymodels:build", "--input-shape", "1,1,128,64", "--local", "--json",
        "--batch-size", "32", "--region", "FRA", cwd=factory_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed.pop("uploaded_bytes") > 0
    sys.path.insert(0, str(factory_dir))
    try:
        from mymodels import build
    finally:
        sys.path.remove(str(factory_dir))
    expected = joulecast.Estimator().predict(
        build(), torch.zeros(1, 1, 128, 64), batch_size=32, region="FRA"
    )
    assert printed == expected.to_dict()
    assert printed["family"] == "cnn"


def test_a_factory_in_a_file_and_a_folder_of_artifacts(factory_dir: Path) -> None:
    done = joulecast_predict(
        "--torch", str(factory_dir / "mymodels.py") + ":build", "--input-shape", "1,1,128,64",
        "--artifacts", str(ROOT / "artifacts"), "--hardware", "h200", cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mymodels.py:build" in done.stdout and "h200" in done.stdout
    assert done.stderr == ""  # asked for in-process: nothing to say about servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_named_server_that_does_not_answer_is_an_error_with_a_hint(capsys) -> None:
    address = f"127.0.0.1:{free_port()}"
    assert not listening(address, 0.2)
    assert main(["predict", str(SAMPLE), "--server", address, "--timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the server at {address}" in err and "joulecast serve" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([str(SAMPLE), "--local", "--server", "localhost:1"], "not both"),
        (["--torch", "mymodels:build"], "--input-shape"),
        (["--torch", "mymodels", "--input-shape", "1,4"], "MODULE:FACTORY"),
        (["--torch", "no_such_module_here:build", "--input-shape", "1,4"], "cannot import"),
        ([str(SAMPLE), "--torch", "m:f", "--input-shape", "1,4"], "not both"),
        ([str(SAMPLE), "--input-shape", "1,4", "--local"], "goes with --torch"),
        (["--torch", "m:f", "--input-shape", "1,-4"], "positive integers"),
        (["--local"], "give an ONNX file"),
        ([str(SAMPLE), "--artifacts", "/nonexistent/artifacts"], "does not exist"),
    ],
)
def test_contradictions_are_refused_in_one_line(argv: list[str], says: str, capsys) -> None:
    assert main(["predict", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and says in err and "\n" not in err
