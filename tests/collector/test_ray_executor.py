"""The Ray executor on a real local Ray instance (one for this module, on this machine, on
loopback only): the smoke plan gives the serial executor's configuration-phases, each once,
through a driver killed half-way and resumed (CI runs it on the two smallest configurations of
each family; the whole plan takes about 20 minutes on 2 cores, so it runs only when asked); a
worker killed with SIGKILL mid-task costs a retry, not a row."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from testkit import joulecast_command  # noqa: E402

from collector.data import synthetic_clips  # noqa: E402
from collector.executors.ray_executor import (  # noqa: E402
    NODE_RESOURCE,
    MeterSpec,
    RaySweepSummary,
    local_ray,
    run_ray,
)
from collector.plans import load_plan  # noqa: E402
from collector.runner import SweepOptions  # noqa: E402
from joulecast.store import MeasurementStore  # noqa: E402

REPO = Path(__file__).parents[2]
TASK_TITLE = b"ray::measure_task"
FULL_SMOKE_ENV = "JOULECAST_RAY_FULL_SMOKE"
FULL_SMOKE_MINUTES = "about 20 minutes on 2 cores"  # 6 serial + 13 on Ray, at load 6-7


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance on this machine, on loopback only, as ``joulecast collect``
    starts one; yields its address for other drivers (the CLI in a subprocess)."""
    with local_ray(ray, {NODE_RESOURCE: 1}, num_cpus=2, log_to_driver=False) as context:
        yield context.address_info["gcs_address"]


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


def _per_process(name: str) -> Iterator[tuple[int, bytes]]:
    """``(pid, /proc/<pid>/<name>)`` of every process still there when read."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / name).read_bytes()
            except OSError:
                continue


def _descendants(root: int) -> set[int]:
    """Processes started by ``root``, at any depth (Ray's servers and workers)."""
    parents = {pid: int(stat.rpartition(b")")[2].split()[1]) for pid, stat in _per_process("stat")}
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _listening(pids: set[int]) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* writes them) of the TCP sockets in LISTEN state
    held by ``pids``."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(fields[1].rpartition(":")[0])
    return found


IPV4_LOOPBACK = "0100007F"  # 127.0.0.1 in /proc/net/tcp's byte order
IPV6_LOOPBACKS = {"00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_the_local_instance_listens_on_loopback_only(cluster: str) -> None:
    assert cluster.startswith("127.0.0.1:")
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    addresses = _listening(_descendants(os.getpid()))
    assert len(addresses) >= 3  # the GCS, the raylet and its object manager at least
    assert all(a == IPV4_LOOPBACK or a in IPV6_LOOPBACKS for a in addresses), addresses


def _parity_through_a_killed_driver(
    cluster: str, tmp_path: Path, plan: str, configuration_phases: int
) -> None:
    """The plan measured by the serial executor, then on Ray by a driver killed once half
    of its rows are stored and rerun with --resume: the same configuration-phases, each once.
    The smallest protocol the CLI allows (1 clip, batch 1) under the cpu-time estimate."""
    common = ["collect", "--plan", plan, "--meter", "cpu-time", "--samples", "1"]
    common += ["--batch-size", "1", "--repeats", "1"]
    serial_db, ray_db = tmp_path / "serial.db", tmp_path / "ray.db"
    serial = subprocess.run(
        joulecast_command(*common, "--db", str(serial_db)), cwd=REPO, capture_output=True, text=True
    )
    assert serial.returncode == 0, serial.stderr
    assert _rows(serial_db) == configuration_phases

    half = configuration_phases // 2
    on_ray = [*common, "--db", str(ray_db), "--executor", "ray", "--ray-address", cluster]
    driver = subprocess.Popen(
        joulecast_command(*on_ray), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline and driver.poll() is None and _rows(ray_db) < half:
        time.sleep(0.05)
    assert driver.poll() is None, "the Ray sweep ended before its driver could be killed"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    killed_at = _rows(ray_db)
    assert half <= killed_at < configuration_phases

    refused = subprocess.run(joulecast_command(*on_ray), cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    done = subprocess.run(
        joulecast_command(*on_ray, "--resume"), cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    left = configuration_phases - killed_at
    assert f"{left} rows measured, {killed_at} already done, 0 failed" in done.stdout
    assert "ray: " in done.stderr  # the cluster and its tasks are named

    ray_keys, serial_keys = _keys(ray_db), _keys(serial_db)
    assert len(ray_keys) == configuration_phases and all(n == 1 for _, n in ray_keys)
    assert sorted(ray_keys) == sorted(serial_keys)  # same run keys: same hardware, same plan
    assert _rows(ray_db) == configuration_phases  # no failed row left behind either
    with MeasurementStore(ray_db, read_only=True) as store:
        rows = store.rows()
        assert all(store.get_graph(r.graph_sha256) for r in rows)
    assert {(r.config_id, r.phase) for r in rows} == {
        (spec.config.config_id, phase)
        for spec in load_plan(plan).runs
        for phase in ("train", "test")
    }
    assert all(r.energy_is_estimate and r.energy_source == "estimate-cpu-time" for r in rows)


def test_a_smoke_subset_on_ray_equals_serial_through_a_killed_driver(
    cluster: str, tmp_path: Path
) -> None:
    """CI-sized: the two smallest configurations of each of the smoke plan's four families
    (16 configuration-phases; the whole plan is the test below)."""
    smoke = json.loads((REPO / "collector" / "plans" / "smoke.json").read_text())
    by_family: dict[str, list[dict]] = {}
    for run in smoke["runs"]:
        by_family.setdefault(run["family"], []).append(run)
    runs = [run for family in by_family.values() for run in family[:2]]
    assert len(by_family) == 4 and len(runs) == 8
    path = tmp_path / "smoke-subset.json"
    path.write_text(json.dumps({**smoke, "name": "smoke-subset", "runs": runs}))
    _parity_through_a_killed_driver(cluster, tmp_path, str(path), 16)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get(FULL_SMOKE_ENV) != "1",
    reason=f"the whole smoke plan twice takes {FULL_SMOKE_MINUTES}: set {FULL_SMOKE_ENV}=1",
)
def test_smoke_plan_on_ray_equals_serial_through_a_killed_driver(
    cluster: str, tmp_path: Path
) -> None:
    _parity_through_a_killed_driver(cluster, tmp_path, "smoke", 86)


def test_a_ray_sweep_refuses_rows_of_another_machine_under_one_name(
    cluster: str, tmp_path: Path
) -> None:
    """A store whose rows of --hardware another CPU measured: the Ray driver refuses the first
    worker's rows before writing them, says what to do, and leaves the stored rows as they were."""
    runs = [{"family": "mlp", "layers": [1], "hidden": [h]} for h in (8, 16)]
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    for path, part in ((one, runs[:1]), (two, runs)):
        path.write_text(json.dumps({"name": "two", "defaults": {"samples": 1}, "runs": part}))
    db = tmp_path / "lab.db"
    common = ["--meter", "cpu-time", "--batch-size", "1", "--repeats", "1"]
    common += ["--hardware", "cpu-lab", "--db", str(db)]
    first = subprocess.run(
        joulecast_command("collect", "--plan", str(one), *common),
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(db) as con:  # as a machine of another CPU model measured them
        con.execute("UPDATE measurements SET cpu_model = 'AMD EPYC (cpu family 25, model 1)'")
    on_ray = ["collect", "--plan", str(two), *common, "--executor", "ray"]
    on_ray += ["--ray-address", cluster, "--resume"]
    refused = subprocess.run(joulecast_command(*on_ray), cwd=REPO, capture_output=True, text=True)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "measured on 'AMD EPYC (cpu family 25, model 1)'" in refused.stderr
    assert "--hardware NAME" in refused.stderr and "nothing of it was stored" in refused.stderr
    assert _rows(db) == 2  # the first configuration's two rows, nothing of the second


def _running_task_pids() -> list[int]:
    """Ray worker processes of this machine executing ``measure_task`` right now."""
    return [pid for pid, title in _per_process("cmdline") if title.startswith(TASK_TITLE)]


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
