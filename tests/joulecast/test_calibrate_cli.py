"""`joulecast calibrate` end to end on a replayed NVML trace (a T4 that nothing else uses): the
command killed with SIGKILL mid-suite and run again, then its rows, its published calibration
and the answers served from it; and the CPU path with the cpu-time estimate."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from estimator.artifacts import load_version
from estimator.service import PredictorRegistry
from estimator.transfer import calibrated
from joulecast.api.local import InProcessClient
from joulecast.cli import main
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore

REPO = Path(__file__).parents[2]
TRACE = REPO / "tests" / "data" / "traces" / "t4_calibrate.json"
SAMPLE = REPO / "examples" / "sample_crnn.onnx"
RUNS = [
    {"family": "mlp", "layers": [1], "hidden": [16], "batch_size": [8, 16]},
    {"family": "mlp", "layers": [2], "hidden": [32]},
    {"family": "cnn", "layers": [1], "hidden": [4]},
]
ROWS = 4 * 2 * 2  # runs x phases x repeats


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _artifacts(root: Path) -> Path:
    """An artifacts folder holding only the shipped transfer model (the calibration's prior)."""
    out = root / "artifacts"
    (out / "transfer").mkdir(parents=True)
    shipped = REPO / "artifacts" / "transfer" / "gpu-training.json"
    (out / "transfer" / "gpu-training.json").write_bytes(shipped.read_bytes())
    return out


@pytest.fixture(scope="module")
def calibration(tmp_path_factory) -> dict:
    """The command killed once three rows are stored, then run again to its end."""
    root = tmp_path_factory.mktemp("calibrate")
    plan = root / "suite.json"
    plan.write_text(
        json.dumps({"name": "calibrate-tiny", "defaults": {"samples": 16}, "runs": RUNS})
    )
    db, artifacts = root / "c.db", _artifacts(root)
    argv = [sys.executable, "-m", "joulecast.cli", "calibrate", "--device", "cpu", "--meter"]
    argv += ["replay", "--trace", str(TRACE), "--plan", str(plan), "--db", str(db)]
    argv += ["--artifacts", str(artifacts), "--window-s", "0.05", "--repeats", "2"]
    argv += ["--idle-s", "0.05"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and _count(db) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the calibration ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _count(db)
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"db": db, "artifacts": artifacts, "out": done.stdout, "err": done.stderr,
            "killed_at": killed_at}  # fmt: skip


def test_a_killed_calibration_resumes_each_item_once(calibration) -> None:
    killed_at = calibration["killed_at"]
    assert 3 <= killed_at < ROWS
    assert f"({killed_at} already done, 0 failed)" in calibration["out"]
    with sqlite3.connect(calibration["db"]) as conn:
        keys = [k for (k,) in conn.execute("SELECT run_key FROM measurements")]
        statuses = {s for (s,) in conn.execute("SELECT DISTINCT status FROM measurements")}
    assert len(keys) == len(set(keys)) == ROWS and statuses == {"ok"}


def test_rows_carry_the_gpu_its_power_limit_and_who_shared_it(calibration) -> None:
    with MeasurementStore(calibration["db"], read_only=True) as store:
        rows = store.rows()
        graphs = {r.graph_sha256 for r in rows}
        assert all(store.get_graph(sha) for sha in graphs)
    for row in rows:
        # a replayed T4 trace is no T4's measurement: its rows are named after the trace
        assert row.hardware == "replay-t4_calibrate"
        assert row.device_name == "Tesla T4" and row.driver == "535.104.05"
        assert row.power_limit_w == 70.0 and row.meter == "replay"
        assert row.energy_source == "nvml-energy-counter" and not row.energy_is_estimate
        assert "gpu_processes=0" in row.notes and row.gpu_other_processes is None
        assert row.idle_power_w is not None and row.samples % row.batch_size == 0
    assert {(r.config_id, r.batch_size, r.phase) for r in rows} == {
        (c, b, p)
        for c, b in [("mlp-n1-h16", 8), ("mlp-n1-h16", 16), ("mlp-n2-h32", 8), ("cnn-n1-h4", 8)]
        for p in ("train", "test")
    }


def test_the_command_shows_held_out_items_before_and_after(calibration) -> None:
    out = calibration["out"]
    assert "calibrated replay-t4_calibrate (GPU tesla-t4): 16 rows of 3 configurations" in out
    assert "held out (mJ per sample)" in out and "transferred" in out
    for item in ("mlp-n1-h16 b8", "mlp-n1-h16 b16", "mlp-n2-h32 b8", "cnn-n1-h4 b8"):
        assert item in out
    assert "train: calibrated median error" in out
    artifacts = calibration["artifacts"].resolve()
    assert (
        f"ask it: joulecast predict MODEL.onnx --hardware replay-t4_calibrate --artifacts "
        f"{artifacts}" in out
    )
    assert "meter: replay" in calibration["err"] and "power limit 70 W" in calibration["err"]
    assert (
        "metered by a replayed trace" in calibration["err"]
        and "not a measurement" in (calibration["err"])
    )


def test_the_calibration_is_served_with_tier_calibrated(calibration) -> None:
    artifacts = calibration["artifacts"]
    assert calibrated.load(artifacts, "tesla-t4") is None  # no T4 calibration: a replay
    model = calibrated.load(artifacts, "replay-t4_calibrate")
    assert model is not None and model.rows == ROWS and model.gpu == "tesla-t4"
    assert model.replayed_rows == ROWS
    info = model.calibration
    assert info["prior"]["version"] and set(info["param_log_shift"]) == set(model.params)
    assert info["log_errors"]["train"]["prior"]["n"] == ROWS // 2
    assert info["power_limits_w"] == [70.0] and info["device_names"] == ["Tesla T4"]
    registry = PredictorRegistry(artifacts)
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=32, samples=1000, epochs=1,
        hardware="replay-t4_calibrate",
    )  # fmt: skip
    assert answer.tier == "calibrated" and answer.hardware == "replay-t4_calibrate"
    assert answer.predictor_version == model.version
    assert answer.warnings[0].startswith(f"NOT A MEASUREMENT: {ROWS} of the calibration's")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert f"{ROWS} rows of 3 configurations measured {today}" in answer.warnings[1]
    assert set(answer.refused) < {"train", "test"}  # a phase at least is answered and checked
    for phase in ("train", "test"):
        est = getattr(answer, phase)
        if phase in answer.refused:  # its held-out rows strayed too far for a x10 interval
            assert any(w.startswith(f"{phase}: no answer") for w in answer.warnings)
            continue
        assert est.energy_low_j < est.energy_j < est.energy_high_j
        assert est.power_w <= 70.0 and est.predictor == "gpu-transfer-calibrated"
    # the same through the service's request and response messages
    reply = InProcessClient(artifacts).predict(SAMPLE.read_bytes(), hardware="replay-t4_calibrate")
    assert reply.tier == "calibrated" and reply.hardware == "replay-t4_calibrate"
    assert reply.warnings[0].startswith("NOT A MEASUREMENT")
    # the T4 itself is answered from its spec sheet, as before any replay
    t4 = InProcessClient(artifacts).predict(SAMPLE.read_bytes(), hardware="Tesla T4")
    assert t4.tier != "calibrated" and not any("NOT A MEASUREMENT" in w for w in t4.warnings)


def test_the_cpu_path_measures_cpu_seconds_and_fits_its_own_predictor(tmp_path, capsys) -> None:
    plan = tmp_path / "cpu.json"
    runs = [{"family": "mlp", "layers": [1], "hidden": [h]} for h in (64, 128, 256)]
    plan.write_text(
        json.dumps({"name": "calibrate-cpu", "defaults": {"samples": 16}, "runs": runs})
    )
    db, artifacts = tmp_path / "cpu.db", tmp_path / "artifacts"
    argv = ["calibrate", "--device", "cpu", "--meter", "cpu-time", "--plan", str(plan)]
    argv += ["--db", str(db), "--artifacts", str(artifacts), "--window-s", "0.05"]
    argv += ["--repeats", "1", "--hardware", "cpu-calibration-test"]
    rc = main(argv)
    out, err = capsys.readouterr()
    with MeasurementStore(db, read_only=True) as store:
        rows = store.rows()
    assert len(rows) == 3 * 2
    assert {r.hardware for r in rows} == {"cpu-calibration-test"}
    assert all(r.energy_source == "estimate-cpu-time" and r.energy_is_estimate for r in rows)
    assert all(r.cpu_s is not None for r in rows)  # windows counted in CPU seconds
    assert "ESTIMATED" in err
    assert "too few to fit well alone" in err and "serves no other CPU's predictor" in err
    # The per-hardware fit either serves or, on three tiny networks, its canary keeps the
    # version aside and says why; its held-out errors are printed and the rows stay either way.
    assert "held out by configuration (train" in out and "held out by configuration (test" in out
    if rc == 0:
        assert "hardware cpu-calibration-test" in out
    else:
        assert rc == 2 and "kept aside, not served" in err and "is kept aside" in out


def test_a_cpu_suite_never_replaces_a_whole_sweep(tmp_path, capsys) -> None:
    db = tmp_path / "never.db"
    argv = ["calibrate", "--device", "cpu", "--meter", "cpu-time", "--hardware", "cpu-amd-epyc"]
    argv += ["--db", str(db), "--artifacts", str(REPO / "artifacts")]
    assert main(argv) == 2
    assert "fitted on 858 rows" in capsys.readouterr().err and not db.exists()


def test_the_cpu_path_carries_the_served_cpu_predictor_to_its_rows(tmp_path, capsys) -> None:
    """With another CPU's predictor served, the suite's rows correct it instead of fitting
    predictors of their own; the result serves like any predictor, labelled estimated."""
    plan = tmp_path / "cpu.json"
    runs = [
        {"family": "mlp", "layers": [1], "hidden": [512]},
        {"family": "mlp", "layers": [1], "hidden": [1024]},
        {"family": "cnn", "layers": [1], "hidden": [128]},
    ]
    plan.write_text(
        json.dumps({"name": "calibrate-cpu", "defaults": {"samples": 16}, "runs": runs})
    )
    db, artifacts = tmp_path / "cpu.db", tmp_path / "artifacts"
    shipped = REPO / "artifacts" / "predictors" / "cpu-amd-epyc"
    shutil.copytree(shipped, artifacts / "predictors" / "cpu-amd-epyc")
    argv = ["calibrate", "--device", "cpu", "--meter", "cpu-time", "--plan", str(plan)]
    argv += ["--db", str(db), "--artifacts", str(artifacts), "--window-s", "0.1"]
    argv += ["--repeats", "1", "--hardware", "cpu-calibration-test"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "carried cpu-amd-epyc (version 89590f45d6bc, 858 rows) to cpu-calibration-test" in out
    assert "train: carried median error" in out and "test: carried median error" in out
    header = next(line for line in out.splitlines() if line.startswith("held out (mJ"))
    assert header.split()[5:7] == ["phase", "estimated"]  # CPU-time rows: never "measured"
    # the command the calibration prints asks its predictor, from any folder
    (ask,) = [line for line in out.splitlines() if line.startswith("ask it: ")]
    command = shlex.split(ask.removeprefix("ask it: ").replace("MODEL.onnx", str(SAMPLE)))
    assert command[0] == "joulecast" and main([*command[1:], "--json"]) == 0
    asked = json.loads(capsys.readouterr().out)
    assert asked["hardware"] == "cpu-calibration-test" and asked["train"]["predictor"] == "carried"
    registry = PredictorRegistry(artifacts)
    answer = registry.predict(
        profile_graph(SAMPLE.read_bytes()), batch_size=8, samples=100, epochs=1,
        hardware="cpu-calibration-test",
    )  # fmt: skip
    assert answer.train.predictor == "carried" and answer.energy_is_estimate
    assert any("ESTIMATED" in w for w in answer.warnings)
    assert answer.train.energy_j >= answer.test.energy_j > 0


def test_a_cpu_suite_with_rows_enough_fits_this_cpus_own_predictors(tmp_path, capsys) -> None:
    """Ten configurations in both phases are enough to fit a CPU alone: another CPU's served
    predictor is not carried to them (carried by such rows, it erred more than a fit alone)."""
    plan = tmp_path / "cpu.json"
    runs = [{"family": "mlp", "layers": [n], "hidden": [h]} for n in (1, 2) for h in (8, 16, 32)]
    runs += [{"family": "cnn", "layers": [1], "hidden": [h]} for h in (2, 4, 6, 8)]
    runs += [{"family": "mlp", "layers": [1], "hidden": [8], "batch_size": 4}]  # a second batch
    plan.write_text(json.dumps({"name": "many", "defaults": {"samples": 16}, "runs": runs}))
    db, artifacts = tmp_path / "cpu.db", tmp_path / "artifacts"
    shipped = REPO / "artifacts" / "predictors" / "cpu-amd-epyc"
    shutil.copytree(shipped, artifacts / "predictors" / "cpu-amd-epyc")
    argv = ["calibrate", "--device", "cpu", "--meter", "cpu-time", "--plan", str(plan)]
    argv += ["--db", str(db), "--artifacts", str(artifacts), "--window-s", "0.05"]
    argv += ["--hardware", "cpu-calibration-test"]
    rc = main(argv)
    out, _ = capsys.readouterr()
    with MeasurementStore(db, read_only=True) as store:
        assert len(store.rows()) == 11 * 2  # one repeat: a CPU suite's default
    assert "carried" not in out
    assert "held out by configuration (train" in out
    # each suite item before (the served EPYC predictor as it is) and after, with intervals
    assert "train: fitted here, held out by configuration, median error" in out
    assert "(before: cpu-amd-epyc as it is:" in out
    header = next(line for line in out.splitlines() if line.startswith("held out (mJ"))
    assert header.split()[5:7] == ["phase", "estimated"]  # CPU-time rows: never "measured"
    assert any(line.startswith("mlp-n2-h16 b8") and ".." in line for line in out.splitlines())
    # one configuration at two batch sizes: two items, each with its own measurement
    twice = [line.split() for line in out.splitlines() if line.startswith("mlp-n1-h8 b")]
    assert sorted((w[1], w[2]) for w in twice) == [
        ("b4", "test"),
        ("b4", "train"),
        ("b8", "test"),
        ("b8", "train"),
    ]
    assert {w[3] for w in twice if w[1] == "b4"}.isdisjoint({w[3] for w in twice if w[1] == "b8"})
    # eleven tiny networks may also be kept aside by the canary (rc 2): not this test's point;
    # the version is written either way, fitted alone
    assert rc == 0 or (rc == 2 and "is kept aside" in out), (rc, out[-2000:])
    (version,) = [d.name for d in (artifacts / "predictors" / "cpu-calibration-test").iterdir()
                  if d.is_dir()]  # fmt: skip
    bundle = load_version(artifacts, "cpu-calibration-test", version).bundle
    assert "carried" not in bundle.predictors and bundle.energy_is_estimate


@pytest.mark.parametrize(
    ("device", "plan", "repeats"), [("cpu", "calibrate-cpu", 1), ("cuda", "calibrate", 3)]
)
def test_each_device_has_its_suite(device: str, plan: str, repeats: int) -> None:
    from joulecast.calibrate_cli import _suite_defaults

    args = argparse.Namespace(device=device, meter="auto", plan=None, repeats=None)
    _suite_defaults(args)
    assert (args.plan, args.repeats) == (plan, repeats)
    replayed = argparse.Namespace(device=device, meter="replay", plan=None, repeats=None)
    _suite_defaults(replayed)  # a GPU's recorded trace, replayed on any device
    assert (replayed.plan, replayed.repeats) == ("calibrate", 3)
    named = argparse.Namespace(device=device, meter="auto", plan="mine.json", repeats=2)
    _suite_defaults(named)
    assert (named.plan, named.repeats) == ("mine.json", 2)
