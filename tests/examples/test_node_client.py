"""The Node.js client (examples/node) against a real server: same answer as the Python CLI.

Needs ``node``; installs the client's packages with ``npm ci`` (package-lock.json) when
``node_modules`` is missing, and skips with the reason when node, npm or the registry is
not there. The Node client uploads the full file (weights and all); the Python CLI strips the
weights first: the server must answer both with the same energy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from testkit import shipped_server

from collector.models import INPUT_SHAPE, ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "examples" / "node"
OPTIONS = ["--batch-size", "16", "--samples", "500", "--epochs", "2"]


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("examples/node/node_modules is missing and npm is not installed")
        try:
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci timed out (is the npm registry reachable?)")
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["?"]
            pytest.skip(f"npm ci failed (is the npm registry reachable?): {tail[0]}")
    return node


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``joulecast serve`` with the shipped predictors, on a free port."""
    with shipped_server() as address:
        yield address


def _full_export(config: ModelConfig, path: Path) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            build_model(config).eval(),
            (torch.zeros(1, *INPUT_SHAPE),),
            str(path),
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "batch"}},
            opset_version=17,
        )
    return path


def _python(model: Path, address: str, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.cli", "predict", str(model), "--server", address,
         *OPTIONS, *extra, "--json"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def _node(node: str, model: Path, address: str, *extra: str) -> dict:
    done = subprocess.run(
        [node, str(NODE_DIR / "predict.js"), str(model), "--server", address, *OPTIONS, *extra,
         "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("config", "extra"),
    [
        (ModelConfig("crnn", (1, 1), (16, 32)), ("--region", "FRA", "--price-per-kwh", "0.2")),
        (ModelConfig("mlp", (1,), (512,)), ("--region", "usa")),  # 17 MB: Node streams it
        (ModelConfig("cnn", (1,), (8,)), ()),
    ],
    ids=["crnn-unary", "mlp-stream", "cnn-plain"],
)
def test_node_gets_the_energy_the_python_cli_gets(
    node: str, server: str, tmp_path: Path, config: ModelConfig, extra: tuple[str, ...]
) -> None:
    model = _full_export(config, tmp_path / "full.onnx")
    py = _python(model, server, *extra)
    js = _node(node, model, server, *extra)
    assert py["uploaded_bytes"] < model.stat().st_size  # Python stripped, Node did not
    for key in ("family", "params", "flops_forward", "flops_train"):
        assert js["profile"][key] == py[key]
    for key in ("hardware", "predictor_version", "energy_source", "energy_is_estimate"):
        assert js[key] == py[key]
    assert js["warnings"] == py["warnings"]
    for phase in ("train", "test"):
        if py[phase] is None:  # no data for it, or refused as too uncertain: null in both
            assert not (js[phase] or {}).get("available"), phase
            continue
        for key in ("energy_j", "energy_low_j", "energy_high_j", "duration_s", "predictor"):
            assert js[phase][key] == py[phase][key], (phase, key)
        footprint = js[phase]["footprint"]
        if not extra:
            assert footprint is None and "energy_kwh" not in py[phase]
            continue
        for key, value in footprint.items():
            assert value == py[phase][key], (phase, key)
        assert ("co2_g" in footprint) == ("--region" in extra)
        assert ("cost" in footprint) == ("--price-per-kwh" in extra)
    assert js["grid"] == py.get("grid")


def test_node_reports_bad_input_in_one_line(node: str, server: str, tmp_path: Path) -> None:
    sample = ROOT / "examples" / "sample_crnn.onnx"
    done = subprocess.run(
        [node, str(NODE_DIR / "predict.js"), str(sample), "--server", server, "--region", "XYZ"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "unknown region" in done.stderr and "INVALID_ARGUMENT" in done.stderr
