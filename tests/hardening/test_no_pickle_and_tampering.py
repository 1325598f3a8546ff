"""Nothing in the package can unpickle, and a server refuses predictor files that do not match
their manifest. (The estimator's own refusals are tested in tests/estimator/test_artifacts.py;
here the whole server start is.)"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import grpc
import pytest
from hardening_harness import ROOT

from estimator.artifacts import MANIFEST, current_version, predictors_root
from estimator.publish import fit_and_publish
from estimator.service import PredictorRegistry
from joulecast.store import MeasurementStore
from rpc.generated import estimator_pb2 as pb

PACKAGES = ("collector", "estimator", "server", "joulecast")
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "joblib", "dill", "cloudpickle", "shelve"}
FORBIDDEN_CALLS = {"torch.load", "read_pickle", "pandas.read_pickle", "pd.read_pickle"}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        where = f"{shown}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [
                f"{where} import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in FORBIDDEN_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where} from {node.module} import ...")
            if node.module == "torch" and any(a.name == "load" for a in node.names):
                found.append(f"{where} from torch import load")
        elif isinstance(node, ast.Call):
            name = _name(node.func)
            if name in FORBIDDEN_CALLS or name.endswith(".read_pickle"):
                found.append(f"{where} {name}(...)")
            if name.split(".")[-1] == "load" and name.split(".")[0] in ("np", "numpy"):
                for kw in node.keywords:
                    if kw.arg == "allow_pickle" and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False
                    ):
                        found.append(f"{where} {name}(allow_pickle=...)")
            if name in ("__import__", "importlib.import_module") and node.args:
                arg = node.args[0]
                if (
                    isinstance(arg, ast.Constant)
                    and str(arg.value).split(".")[0] in FORBIDDEN_MODULES
                ):
                    found.append(f"{where} {name}({arg.value!r})")
    return found


def test_the_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "probe.py"
    bad.write_text(
        "import pickle\nfrom joblib import load\nimport dill as d\nimport torch\n"
        "import numpy as np\ntorch.load('m.pt')\nnp.load('a.npy', allow_pickle=True)\n"
        "import pandas as pd\npd.read_pickle('x')\n__import__('cloudpickle')\n"
        "np.load('b.npy', allow_pickle=False)\n"
    )
    assert len(_offences(bad)) == 7, _offences(bad)


def test_no_module_can_unpickle() -> None:
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 30
    offences = [o for path in files for o in _offences(path)]
    assert not offences, offences


@pytest.fixture
def two_hardware(fitted_copy, make_rows, tmp_path: Path) -> Path:
    """The fitted ``cpu-test`` predictor plus a second hardware, ``hw-b``, fitted too."""
    artifacts, _ = fitted_copy
    db = tmp_path / "b.db"
    rows = make_rows("hw-b", scale=2.0, tag="b")
    with MeasurementStore(db) as store:
        for _, graph in rows:
            store.put_graph(graph)
        store.put_rows([(row, ()) for row, _ in rows])
    fit_and_publish(db, "hw-b", artifacts)
    return artifacts


def _request(graph: bytes, hardware: str) -> pb.PredictEnergyRequest:
    return pb.PredictEnergyRequest(
        onnx_model=graph, batch_size=8, samples=100, epochs=1, hardware=hardware
    )


@pytest.mark.parametrize("tamper", ["model_file", "manifest", "extra_file", "missing_file"])
def test_server_refuses_a_tampered_predictor(
    tamper, two_hardware, start_server, family_graphs, rpc_error, caplog
) -> None:
    artifacts = two_hardware
    folder = predictors_root(artifacts) / "hw-b" / current_version(artifacts, "hw-b")
    manifest = json.loads((folder / MANIFEST).read_text())
    model_file = folder / sorted(manifest["files"])[0]
    if tamper == "model_file":
        data = bytearray(model_file.read_bytes())
        data[len(data) // 2] ^= 0x01
        model_file.write_bytes(bytes(data))
        needle = "sha256 does not match"
    elif tamper == "manifest":
        manifest["energy_source"] = "nvml"  # a claim the fit never made
        (folder / MANIFEST).write_text(json.dumps(manifest))
        needle = "does not hash to version"
    elif tamper == "extra_file":
        (folder / "evil.pkl").write_bytes(b"\x80\x04K\x01.")
        needle = "do not match the manifest"
    else:
        model_file.unlink()
        needle = "do not match the manifest"

    with caplog.at_level(logging.ERROR, logger="estimator.service"):
        served = start_server(registry=PredictorRegistry(artifacts), artifacts_dir=artifacts)
    refusals = [r.getMessage() for r in caplog.records if "hw-b" in r.getMessage()]
    assert refusals and needle in refusals[0], refusals

    graph = family_graphs["cnn"]
    code, details = rpc_error(served.stub.PredictEnergy, _request(graph, "hw-b"), timeout=30)
    assert code == grpc.StatusCode.NOT_FOUND and "hw-b" in details
    ok = served.stub.PredictEnergy(_request(graph, "cpu-test"), timeout=30)
    assert ok.hardware == "cpu-test" and ok.train.available
    listed = served.stub.ListPredictors(pb.ListPredictorsRequest(), timeout=10)
    assert [p.hardware for p in listed.predictors] == ["cpu-test"]
