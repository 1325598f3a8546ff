"""The Ray executor on a real local Ray instance (one for this module, on this machine): the
smoke plan gives the serial executor's configuration-phases, each once, through a driver killed
half-way and resumed; a worker killed with SIGKILL mid-task costs a retry, not a row."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from collector.data import synthetic_clips  # noqa: E402
from collector.executors.ray_executor import (  # noqa: E402
    NODE_RESOURCE,
    MeterSpec,
    RaySweepSummary,
    run_ray,
)
from collector.plans import load_plan  # noqa: E402
from collector.runner import SweepOptions  # noqa: E402
from joulecast.store import MeasurementStore  # noqa: E402

REPO = Path(__file__).parents[2]
TASK_TITLE = b"ray::measure_task"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance on this machine; yields its address for other drivers."""
    context = ray.init(
        address="local",
        num_cpus=2,
        resources={NODE_RESOURCE: 1},
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


def _joulecast(*args: str) -> list[str]:
    return [sys.executable, "-m", "joulecast.cli", *args]


def _rows(db: Path) -> int:
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _keys(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT run_key, COUNT(*) FROM measurements WHERE status = 'ok' GROUP BY run_key"
        ).fetchall()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_plan_on_ray_equals_serial_through_a_killed_driver(
    cluster: str, tmp_path: Path
) -> None:
    common = ["collect", "--plan", "smoke", "--meter", "cpu-time"]
    serial_db, ray_db = tmp_path / "serial.db", tmp_path / "ray.db"
    serial = subprocess.run(
        _joulecast(*common, "--db", str(serial_db)), cwd=REPO, capture_output=True, text=True
    )
    assert serial.returncode == 0, serial.stderr

    on_ray = [*common, "--db", str(ray_db), "--executor", "ray", "--ray-address", cluster]
    driver = subprocess.Popen(
        _joulecast(*on_ray), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and driver.poll() is None and _rows(ray_db) < 30:
        time.sleep(0.1)
    assert driver.poll() is None, "the Ray sweep ended before its driver could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = _rows(ray_db)
    assert 30 <= killed_at < 86

    refused = subprocess.run(_joulecast(*on_ray), cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    done = subprocess.run(_joulecast(*on_ray, "--resume"), cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{86 - killed_at} rows measured, {killed_at} already done" in done.stdout
    assert "ray: " in done.stderr  # the cluster and its tasks are named

    ray_keys, serial_keys = _keys(ray_db), _keys(serial_db)
    assert len(ray_keys) == 86 and all(n == 1 for _, n in ray_keys)
    assert sorted(ray_keys) == sorted(serial_keys)  # same run keys: same hardware, same plan
    assert _rows(ray_db) == 86  # no failed row left behind either
    with MeasurementStore(ray_db, read_only=True) as store:
        rows = store.rows()
        assert all(store.get_graph(r.graph_sha256) for r in rows)
    assert {(r.config_id, r.phase) for r in rows} == {
        (spec.config.config_id, phase)
        for spec in load_plan("smoke").runs
        for phase in ("train", "test")
    }
    assert all(r.energy_is_estimate and r.energy_source == "estimate-cpu-time" for r in rows)


def _running_task_pids() -> list[int]:
    """Ray worker processes of this machine executing ``measure_task`` right now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(TASK_TITLE):
                pids.append(int(entry.name))
    return pids


def test_a_worker_killed_mid_task_costs_a_retry_not_a_row(cluster: str, tmp_path: Path) -> None:
    runs = [
        {"family": "cnn", "layers": [n], "hidden": [h]}
        for n, h in [(2, 16), (3, 16), (2, 32), (3, 32)]
    ]
    path = tmp_path / "cnn.json"
    path.write_text(json.dumps({"name": "cnn", "defaults": {"samples": 64}, "runs": runs}))
    plan = load_plan(str(path))
    summary: list[RaySweepSummary] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            with MeasurementStore(tmp_path / "m.db") as store:
                summary.append(
                    run_ray(
                        plan.runs,
                        synthetic_clips(64),
                        store,
                        MeterSpec("cpu-time"),
                        SweepOptions(hardware="h"),
                        hardware="h",
                    )
                )
        except BaseException as exc:
            errors.append(exc)

    driver = threading.Thread(target=sweep)
    driver.start()
    killed: int | None = None
    deadline = time.monotonic() + 600
    while killed is None and driver.is_alive() and time.monotonic() < deadline:
        pids = _running_task_pids()
        if pids and _rows(tmp_path / "m.db") >= 1:  # mid-sweep, in a task that is running
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.01)
    driver.join(600)
    assert not errors, errors
    assert killed is not None, "no task was caught running"
    assert not Path(f"/proc/{killed}").exists()
    result = summary[0]
    assert (result.measured, result.failed, result.failures) == (8, 0, [])
    assert len(result.tasks) == 8  # one result per task, the killed one included (its retry)
    keys = _keys(tmp_path / "m.db")
    assert len(keys) == 8 and all(n == 1 for _, n in keys)
    assert _rows(tmp_path / "m.db") == 8
