"""The executors' shared parts, without a Ray cluster: a worker's task measured in this process
gives the serial executor's rows; resume planning across hardware; the one-line error when Ray
is not installed."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from collector.data import SpectrogramSet, synthetic_clips
from collector.executors.ray_executor import (
    INSTALL_HINT,
    MeterSpec,
    Task,
    TaskResult,
    measure_task,
    plan_tasks,
    refuse_another_machine,
    unit_key,
)
from collector.executors.serial import run_serial
from collector.meters.replay import ReplayMeter
from collector.plans import load_plan
from collector.runner import SweepOptions
from joulecast.errors import FailedPrecondition
from joulecast.store import MeasurementStore

TRACES = Path(__file__).parents[1] / "data" / "traces"
REPO = Path(__file__).parents[2]
TRACE = TRACES / "t4_epoch.json"
RUNS = [
    {"family": "mlp", "layers": [2], "hidden": [64]},
    {"family": "cnn", "layers": [2], "hidden": [8]},
]


def _plan(tmp_path: Path) -> object:
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"name": "two", "defaults": {"samples": 8}, "runs": RUNS}))
    return load_plan(str(path))


def test_a_task_measured_here_gives_the_serial_rows_and_writes_nothing(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    options = SweepOptions(hardware="t4-replay")
    with ReplayMeter(TRACE) as meter, MeasurementStore(tmp_path / "s.db") as store:
        run_serial(plan.runs, synthetic_clips(8), store, meter, options)
        serial = {r.run_key: r for r in store.rows()}
    dataset = SpectrogramSet(synthetic_clips(8))
    spec = plan.runs[1]
    task = Task(
        spec, "test", (0, 1), replace(options, repeats=2), MeterSpec("replay", trace=str(TRACE))
    )
    result = measure_task(task, dataset)
    assert result.hardware == "replay-t4_epoch"  # the worker names its own hardware
    assert (result.measured, result.failed) == (2, 0)
    keys = [row.run_key for row, _ in result.rows]
    assert keys == [
        "two/cnn-n2-h8/s8/b8/e1/test/r0@replay-t4_epoch/cpu",
        "two/cnn-n2-h8/s8/b8/e1/test/r1@replay-t4_epoch/cpu",
    ]
    twin = serial["two/cnn-n2-h8/s8/b8/e1/test/r0@t4-replay/cpu"]
    for row, trace in result.rows:
        assert row.status == "ok" and row.phase == "test" and len(trace) >= 1
        assert (row.flops_forward, row.params) == (twin.flops_forward, twin.params)
        assert row.graph_sha256 == twin.graph_sha256  # the same weightless graph, byte for byte
    assert len(result.graphs) == 1 and len(result.graphs[0]) < 200_000


def test_resume_planning_counts_a_unit_done_on_any_hardware(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    options = SweepOptions(hardware="gpu-a", repeats=2)
    meter = MeterSpec("replay", trace=str(TRACE))
    with ReplayMeter(TRACE) as replay, MeasurementStore(tmp_path / "m.db") as store:
        run_serial(plan.runs[:1], synthetic_clips(8), store, replay, replace(options, repeats=1))
        with pytest.raises(FailedPrecondition, match="--resume"):
            plan_tasks(plan.runs, store, options, meter, None, None)
        resumed = replace(options, resume=True)
        planned = plan_tasks(plan.runs, store, resumed, meter, None, None)
        # mlp's repeat 0 is stored (by gpu-a): only its repeat 1 is left; cnn is whole
        assert [(t.spec.config.config_id, t.phase, t.repeats) for t in planned.tasks] == [
            ("mlp-n2-h64", "train", (1,)),
            ("mlp-n2-h64", "test", (1,)),
            ("cnn-n2-h8", "train", (0, 1)),
            ("cnn-n2-h8", "test", (0, 1)),
        ]
        assert (planned.rows, planned.skipped) == (6, 2)
        # an explicit hardware id is an exact key: gpu-b has measured nothing yet
        exact = plan_tasks(plan.runs, store, resumed, meter, "gpu-b", None)
        assert exact.rows == 8 and all(t.hardware == "gpu-b" for t in exact.tasks)
    assert unit_key("p/c/s8/b8/e1/test/r3@tesla-t4/cuda") == "p/c/s8/b8/e1/test/r3@*/cuda"


def test_a_store_of_another_machine_is_not_resumed_as_this_one(tmp_path: Path) -> None:
    """Rows of the same hardware id that another CPU measured are neither skipped as done
    here nor mixed with this machine's: the resume is refused, with what to do instead."""
    plan = _plan(tmp_path)
    db = tmp_path / "m.db"
    options = SweepOptions(hardware="cpu-lab", resume=True)
    with ReplayMeter(TRACE) as meter, MeasurementStore(db) as store:
        run_serial(plan.runs[:1], synthetic_clips(8), store, meter, options)
    with sqlite3.connect(db) as raw:  # as a machine of another CPU model wrote them
        raw.execute("UPDATE measurements SET cpu_model = 'AMD EPYC (cpu family 25, model 1)'")
    with ReplayMeter(TRACE) as meter, MeasurementStore(db) as store:
        with pytest.raises(FailedPrecondition, match=r"measured on 'AMD EPYC .*--hardware"):
            run_serial(plan.runs, synthetic_clips(8), store, meter, options)
        assert len(store.rows()) == 2  # nothing measured, nothing skipped as done
        named = run_serial(
            plan.runs[:1], synthetic_clips(8), store, meter, replace(options, hardware="cpu-2")
        )
        assert (named.measured, named.skipped) == (2, 0)


def test_a_cpu_id_names_the_family_and_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """A VM names two CPU generations alike ("AMD EPYC"); the default id tells them apart."""
    from collector import hardware

    for info, expected in [
        ({"model name": "AMD EPYC", "cpu family": "26", "model": "2"}, "cpu-amd-epyc-f26m2"),
        (
            {"model name": "Intel(R) Xeon(R) Processor", "cpu family": "6", "model": "207"},
            "cpu-intel-xeon-f6m207",
        ),
        ({"model name": "Neoverse-N1"}, "cpu-neoverse-n1"),  # no numbers: the name alone
    ]:
        monkeypatch.setattr(hardware, "_cpuinfo", lambda info=info: info)
        assert hardware.default_hardware("cpu") == expected


def test_executor_ray_without_ray_fails_with_one_line_saying_what_to_install(
    tmp_path: Path,
) -> None:
    blocked = (
        "import sys; sys.modules['ray'] = None; from joulecast.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    db = tmp_path / "m.db"
    args = ["collect", "--plan", "smoke", "--executor", "ray", "--db", str(db)]
    done = subprocess.run(
        [sys.executable, "-c", blocked, *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"error: {INSTALL_HINT}"]
    assert "pip install 'joulecast[ray]'" in done.stderr
    assert not db.exists()  # refused before anything was opened


def test_ray_options_are_checked_before_any_work(tmp_path: Path) -> None:
    args = ["collect", "--plan", "smoke", "--ray-address", "127.0.0.1:1", "--db", "x.db"]
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.cli", *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert (
        done.returncode == 2 and done.stderr.strip() == "error: --ray-address needs --executor ray"
    )


def test_a_ray_result_of_another_machine_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    """The driver checks each worker's rows as they come back: rows of a hardware id that
    another CPU measured (in the store, or earlier in the same sweep: a mixed cluster under one
    --hardware) are refused before they are written, with what to do instead."""
    plan = _plan(tmp_path)
    options = SweepOptions(hardware="cpu-lab", resume=True)
    with ReplayMeter(TRACE) as meter, MeasurementStore(tmp_path / "old.db") as store:
        run_serial(plan.runs[:1], synthetic_clips(8), store, meter, options)
    with sqlite3.connect(tmp_path / "old.db") as raw:  # as a machine of another CPU model did
        raw.execute("UPDATE measurements SET cpu_model = 'AMD EPYC (cpu family 25, model 1)'")
    task = Task(
        plan.runs[1], "test", (0,), options, MeterSpec("replay", trace=str(TRACE)), "cpu-lab"
    )
    result = measure_task(task, SpectrogramSet(synthetic_clips(8)))
    here = result.rows[0][0].cpu_model
    assert here and "AMD EPYC (cpu family 25" not in here
    refused = pytest.raises(FailedPrecondition, match=r"measured on 'AMD EPYC .*--hardware NAME")
    with MeasurementStore(tmp_path / "old.db") as store, refused:
        refuse_another_machine(store, task, result, {})
    with MeasurementStore(tmp_path / "new.db") as store:
        machines: dict[tuple[str, bool], set[str]] = {}
        refuse_another_machine(store, task, result, machines)  # a fresh store: this machine
        assert machines == {("cpu-lab", False): {here}}
        other = TaskResult(
            **{
                **result.__dict__,
                "rows": tuple((replace(r, cpu_model="Neoverse-N1"), t) for r, t in result.rows),
                "node": "arm-7",
            }
        )
        with pytest.raises(FailedPrecondition, match=r"worker on arm-7 .*nothing of it was stored"):
            refuse_another_machine(store, task, other, machines)
