"""The calibration suite's measuring half on a replayed NVML trace: a busy GPU is refused before
any work, the reference plan spans kinds of work inside its budget (the whole command, killed
and resumed, is tests/joulecast/test_calibrate_cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.calibrate import (
    DEFAULT_BUDGET_S,
    IDLE_S,
    REPEATS,
    WINDOW_S,
    GpuBusy,
    SuiteSettings,
    measure_suite,
    suite_hardware,
)
from collector.plans import load_plan
from joulecast.errors import InvalidArgument

REPO = Path(__file__).parents[2]
TRACES = REPO / "tests" / "data" / "traces"


def test_the_reference_plan_spans_kinds_of_work_inside_its_budget() -> None:
    plan = load_plan("calibrate")
    families = {r.config.family for r in plan.runs}
    assert families == {"mlp", "cnn", "rnn", "crnn", "transformer"}
    batches = {f: {r.batch_size for r in plan.runs if r.config.family == f} for f in families}
    assert min(batches["mlp"]) <= 8 and max(batches["mlp"]) >= 256  # weight- and compute-bound
    assert min(batches["cnn"]) <= 8 and max(batches["cnn"]) >= 128
    assert any(r.config.rnn_input == "frames" for r in plan.runs)  # sequential steps
    assert len({r.config.config_id for r in plan.runs}) >= 3  # enough to leave one out
    windows = len(plan.runs) * 2 * REPEATS
    idle = len(plan.runs) * REPEATS * IDLE_S
    # the windows and idle baselines leave a quarter of the budget for building and probing
    assert windows * WINDOW_S + idle <= 0.75 * DEFAULT_BUDGET_S


def test_rows_are_named_by_the_catalog_id_of_the_gpu() -> None:
    assert suite_hardware("cuda", "Tesla T4", None) == "tesla-t4"
    assert suite_hardware("cuda", "NVIDIA H200", None) == "h200"
    assert suite_hardware("cuda", "Some Future GPU 9000", None) == "some-future-gpu-9000"
    assert suite_hardware("cuda", "Tesla T4", "lab-t4") == "lab-t4"
    assert suite_hardware("cpu", "AMD EPYC", None).startswith("cpu-")
    assert suite_hardware("cuda", "Tesla T4", None, "traces/t4_calibrate.json") == (
        "replay-t4_calibrate"  # a replayed trace is no T4's measurement
    )


@pytest.mark.parametrize(
    ("device", "device_name", "trace", "why"),
    [
        ("cuda", "NVIDIA H100 80GB HBM3", None, "ran on 'NVIDIA H100 80GB HBM3'"),
        ("cuda", "Some Future GPU 9000", None, "ran on 'Some Future GPU 9000'"),
        ("cpu", "AMD EPYC", None, "ran on 'cpu'"),
        ("cuda", "NVIDIA H200", "t4_calibrate.json", "replayed trace"),
    ],
)
def test_a_catalogued_gpus_id_is_refused_for_rows_of_anything_else(
    device: str, device_name: str, trace: str | None, why: str
) -> None:
    with pytest.raises(InvalidArgument, match="names the catalogued GPU NVIDIA H200") as refused:
        suite_hardware(device, device_name, "h200", trace)
    assert why in str(refused.value)
    assert suite_hardware("cuda", "NVIDIA H200", "h200") == "h200"  # its own GPU's rows


def test_a_busy_gpu_is_refused_before_any_work(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    settings = SuiteSettings(
        db=db, device="cpu", meter="replay", trace=str(TRACES / "t4_busy.json"), budget_s=5
    )
    with pytest.raises(GpuBusy) as err:
        measure_suite(settings, say=lambda line: None)
    message = str(err.value)
    assert "4242" in message and "energy counter" in message and "--allow-busy-gpu" in message
    assert "\n" not in message
    assert not db.exists()  # nothing measured, nothing stored


def test_settings_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="budget"):
        SuiteSettings(db=Path("x.db"), budget_s=0).check()
    with pytest.raises(InvalidArgument, match="device"):
        SuiteSettings(db=Path("x.db"), device="tpu").check()


@pytest.mark.parametrize("holdout", ["holdout-cpu", "holdout-cpu-b"])
def test_a_cpu_holdout_plan_holds_no_configuration_of_another_plan(holdout: str) -> None:
    """Each scores a CPU calibration on networks nothing was fitted on: none of its
    configurations may be in the suite, in the sweeps a prior is fitted on or in the other
    held-out set."""
    from collector.plans import available_plans, load_plan

    held = {run.config.config_id for run in load_plan(holdout).runs}
    assert len(held) == 12
    assert {c.split("-")[0] for c in held} == {"mlp", "cnn", "rnn", "crnn"}
    for name in available_plans():
        if name != holdout:
            assert not held & {run.config.config_id for run in load_plan(name).runs}, name
