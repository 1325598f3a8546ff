"""examples/compare_architectures.py runs as documented and draws its figure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_the_comparison_predicts_three_families_and_writes_a_png(tmp_path: Path) -> None:
    png = tmp_path / "comparison.png"
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "compare_architectures.py"), str(png),
         "--region", "DEU", "--price-per-kwh", "0.3"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="module://no-such-backend"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.strip()}
    assert rows["MLP"][1] == "mlp" and rows["CNN"][1] == "cnn"
    assert rows["Transformer"][1] == "transformer"
    for name in ("MLP", "CNN", "Transformer"):
        assert float(rows[name][3]) > 0  # training kWh
    assert "ESTIMATED" in done.stdout
    data = png.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
