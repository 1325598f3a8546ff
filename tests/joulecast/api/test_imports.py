"""``import joulecast`` is light, and so is a prediction: each checked in a fresh interpreter
by reading its ``sys.modules``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
_REPORT = "import json; print(json.dumps(sorted(m for m in {names!r} if m in sys.modules)))"


def loaded_after(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after ``code`` ran in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\n{_REPORT.format(names=names)}"],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_joulecast_imports_nothing_heavy() -> None:
    heavy = ("torch", "xgboost", "grpc", "onnx", "numpy", "pandas", "google.protobuf")
    assert loaded_after("import joulecast\nest = joulecast.Estimator()", heavy) == []


def test_predicting_for_a_module_imports_no_fitting_library_nor_grpc() -> None:
    code = (
        "import joulecast, torch\n"
        "p = joulecast.Estimator().predict(torch.nn.Linear(128, 10), torch.zeros(1, 128),"
        " batch_size=8, samples=1000)\n"
        "assert p.train.energy_j > 0, p"
    )
    loaded = loaded_after(code, ("xgboost", "grpc", "pandas", "scipy", "sklearn", "torch"))
    assert loaded == ["torch"]
