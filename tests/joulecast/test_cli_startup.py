"""Start-up: `joulecast --help` and the client side of `predict` import no heavy module.

Each check runs the real command in a fresh interpreter and reads its ``sys.modules``: an
import added at the top of a module that `register` or the client path reaches fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from testkit import shipped_server

from estimator.transfer import artifact, calibrated

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "sample_crnn.onnx"
HEAVY = (
    "torch", "xgboost", "pandas", "matplotlib", "sklearn", "scipy", "deepspeed", "codecarbon",
    "onnx", "numpy", "grpc",
)  # fmt: skip
NEVER_ON_CLIENT = ("torch", "xgboost", "pandas", "onnx", "numpy")
"""The client path needs grpcio and protobuf only: weights are stripped on the wire."""
NEVER_IN_PROCESS = ("torch", "xgboost", "pandas", "sklearn", "scipy", "matplotlib", "grpc")
"""An ONNX file answered in-process needs onnx and numpy (the profiler, the predictors), no
fitting library, and no gRPC when no server listens."""

_PROBE = """
import json, sys
from joulecast.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
print("PROBE " + json.dumps({{"rc": rc, "heavy": heavy}}), file=sys.stderr)
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def run_probe(*argv: str) -> tuple[dict, str]:
    """Run ``joulecast ARGV`` in a fresh interpreter; its exit code, heavy modules, stdout."""
    result, out, _ = run_probe_with_stderr(*argv)
    return result, out


def run_probe_with_stderr(*argv: str) -> tuple[dict, str, str]:
    """:func:`run_probe`, and what the command printed on stderr."""
    code = _PROBE.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stderr.splitlines()
    line = next(x for x in lines if x.startswith("PROBE "))
    err = "\n".join(x for x in lines if not x.startswith("PROBE "))
    return json.loads(line[len("PROBE ") :]), done.stdout, err


@pytest.fixture(scope="module")
def server_address() -> Iterator[str]:
    """A real `joulecast serve` process on a free port, serving the shipped predictors."""
    with shipped_server() as address:
        yield address


def test_help_imports_nothing_heavy() -> None:
    result, out = run_probe("--help")
    assert result["rc"] == 0
    assert "predict" in out and "profile" in out and "report" in out
    assert result["heavy"] == []


@pytest.mark.parametrize(
    "command", ["fit", "report", "import", "collect", "predict", "profile", "hardware"]
)
def test_subcommand_help_imports_nothing_heavy(command: str) -> None:
    result, out = run_probe(command, "--help")
    assert result["rc"] == 0
    assert f"joulecast {command}" in out
    assert result["heavy"] == []


def test_hardware_listing_imports_nothing_heavy() -> None:
    """The catalog and the manifests are read; no predictor is loaded."""
    result, out = run_probe("hardware", "--json", "--artifacts", str(ROOT / "artifacts"))
    assert result["rc"] == 0
    assert any(row["id"] == "quadro-rtx6000" and row["measured"] for row in json.loads(out))
    assert result["heavy"] == []


def test_predict_client_imports_no_torch_xgboost_pandas(server_address: str) -> None:
    result, out = run_probe("predict", str(SAMPLE), "--server", server_address, "--json")
    assert result["rc"] == 0, out
    assert json.loads(out)["train"]["energy_j"] > 0
    assert not set(result["heavy"]) & set(NEVER_ON_CLIENT), result["heavy"]


def test_predict_in_process_imports_no_fitting_library_nor_grpc() -> None:
    result, out, _ = run_probe_with_stderr("predict", str(SAMPLE), "--local", "--json")
    assert result["rc"] == 0, out
    assert json.loads(out)["train"]["energy_j"] > 0
    assert not set(result["heavy"]) & set(NEVER_IN_PROCESS), result["heavy"]


def test_predict_without_a_server_answers_in_process_and_says_so() -> None:
    from joulecast.predict_cli import DEFAULT_SERVER, listening

    if listening(DEFAULT_SERVER, 0.5):
        pytest.skip(f"something listens at {DEFAULT_SERVER}: the fallback cannot be seen")
    result, out, err = run_probe_with_stderr("predict", str(SAMPLE), "--json")
    assert result["rc"] == 0, err
    assert json.loads(out)["train"]["energy_j"] > 0
    notes = [line for line in err.splitlines() if line.strip()]
    assert len(notes) == 1 and "answering in this process" in notes[0], err
    assert "grpc" not in result["heavy"]  # a refused connection needs no gRPC to be seen


def test_import_energy_choices_match_the_importer() -> None:
    from collector.import_cli import ENERGY_CHOICES
    from collector.import_codecarbon import ENERGY_COLUMNS

    assert tuple(sorted(ENERGY_COLUMNS)) == ENERGY_CHOICES


def test_hardware_lists_a_calibrated_gpu_and_imports_nothing_heavy(tmp_path: Path) -> None:
    prior = artifact.load(ROOT / "artifacts")
    assert prior is not None
    model = calibrated.CalibratedModel(
        "my-t4", "tesla-t4", prior.params, {"train": (-0.4, 0.5)}, {"rows": 12}
    )
    calibrated.publish(model, tmp_path)
    result, out = run_probe("hardware", "--json", "--artifacts", str(tmp_path))
    assert result["rc"] == 0
    t4 = next(row for row in json.loads(out) if row["id"] == "tesla-t4")
    assert not t4["measured"]
    assert t4["calibrations"] == [{"hardware": "my-t4", "version": model.version, "rows": 12}]
    assert result["heavy"] == []
    _, table = run_probe("hardware", "--artifacts", str(tmp_path))
    assert "no, calibrated (my-t4)" in table
