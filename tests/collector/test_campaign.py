"""The GPU campaign's dry run on cpu, in a Python where the optional packages cannot be imported.

The device machine has torch, nvidia-ml-py, numpy, pandas, onnx and scikit-learn only: the
campaign must run without DeepSpeed (FLOPs then come from the weightless graph), CodeCarbon,
XGBoost, librosa, soundfile, grpc, matplotlib and rich. A sitecustomize on PYTHONPATH makes them
unimportable in the subprocess, as on the device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collector.flops import deepspeed_cost
from collector.models import ModelConfig, build_model
from joulecast.store import MeasurementStore

REPO = Path(__file__).parents[2]
ABSENT_ON_DEVICE = (
    "deepspeed",
    "codecarbon",
    "xgboost",
    "librosa",
    "soundfile",
    "grpc",
    "matplotlib",
    "rich",
)
BLOCKER = f"""
import sys
for name in {ABSENT_ON_DEVICE!r}:
    sys.modules[name] = None  # import raises ImportError, importlib.util.find_spec gives None
"""
RUNS = [
    {"family": "mlp", "layers": [2], "hidden": [64]},
    {"family": "cnn", "layers": [1], "hidden": [8]},
    {"family": "rnn", "layers": [1], "hidden": [32]},
    {"family": "crnn", "layers": [1, 1], "hidden": [8, 16]},
]


def test_campaign_dry_run_without_the_optional_packages(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    plan = tmp_path / "tiny.json"
    plan.write_text(json.dumps({"name": "tiny", "defaults": {"samples": 16}, "runs": RUNS}))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO}"}
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; import deepspeed"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "deepspeed" in probe.stderr  # the blocker works
    done = subprocess.run(
        [
            *(sys.executable, "-m", "collector.campaign", "--device", "cpu"),
            *("--meter", "cpu-time", "--plans", str(plan), "--repeats", "2"),
            *("--out", str(out), "--budget-s", "300"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "campaign.json").read_text())
    assert report["plans"]["tiny"]["measured"] == 16 and report["plans"]["tiny"]["failed"] == 0
    assert "cpu" in (out / "identity.txt").read_text()
    versions = json.loads((out / "versions.json").read_text())
    assert {"torch", "deepspeed"} <= set(versions)  # named, importable or not
    with MeasurementStore(out / "measurements.db") as store:
        rows = store.rows()
        graphs = {r.config_id: store.get_graph(r.graph_sha256) for r in rows if r.graph_sha256}
    assert len(rows) == 16 and {r.repeat for r in rows} == {0, 1}
    assert all(r.energy_source == "estimate-cpu-time" and r.energy_is_estimate for r in rows)
    assert len(graphs) == 4 and all(graphs.values())
    # FLOPs came from the graph profiler (DeepSpeed was blocked) and equal DeepSpeed's count
    pytest.importorskip("deepspeed")
    for run in RUNS:
        config = ModelConfig(
            family=run["family"], layers=tuple(run["layers"]), hidden=tuple(run["hidden"])
        )
        want = deepspeed_cost(build_model(config))
        got = next(r for r in rows if r.config_id == config.config_id)
        assert (got.flops_forward, got.params) == (want.flops_forward, want.params)


def test_campaign_timed_windows_and_named_hardware(tmp_path: Path) -> None:
    """On a fast GPU the paper's 1578 clips last tenths of a second: --window-seconds makes each
    window hold whole batches for at least that long, and --hardware names the rows."""
    from collector.campaign.gpu import main

    plan = tmp_path / "tiny.json"
    runs = [{"family": "mlp", "layers": [1], "hidden": [32]}]
    plan.write_text(json.dumps({"name": "tiny", "defaults": {"samples": 8}, "runs": runs}))
    out = tmp_path / "out"
    argv = ["--device", "cpu", "--meter", "cpu-time", "--plans", str(plan), "--repeats", "1"]
    argv += ["--out", str(out), "--window-seconds", "0.2", "--hardware", "probe-box"]
    assert main(argv) == 0
    with MeasurementStore(out / "measurements.db") as store:
        rows = store.rows()
    assert {r.hardware for r in rows} == {"probe-box"} and len(rows) == 2
    # Timed windows: more samples than the plan's 8 (the batches cycle through the clips).
    assert all(r.samples > 8 and r.samples % 8 == 0 for r in rows)
