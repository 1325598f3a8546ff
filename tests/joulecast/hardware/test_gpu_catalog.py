"""The shipped GPU catalog: complete, physically sane, and refusing malformed entries."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from joulecast.errors import InvalidArgument
from joulecast.hardware import GpuSpec, load_catalog, peak_flops
from joulecast.hardware.catalog import (
    SOURCE_GROUPS,
    CatalogError,
    parse_catalog,
    parse_catalog_text,
    read_catalog,
)
from joulecast.hardware.spec import FIGURES, PRECISIONS

ROOT = Path(__file__).resolve().parents[3]

REQUIRED_IDS = {
    # data centre
    "p100-pcie-16gb", "p100-sxm2", "v100-pcie-16gb", "v100-pcie-32gb", "v100-sxm2-16gb",
    "v100-sxm2-32gb", "tesla-t4", "a100-pcie-40gb", "a100-sxm4-40gb", "a100-pcie-80gb",
    "a100-sxm4-80gb", "a10", "a30", "a40", "l4", "l40s", "h100-pcie", "h100-sxm", "h200",
    # workstation
    "quadro-rtx6000", "quadro-rtx8000", "rtx-a6000", "rtx-6000-ada",
    # consumer
    "gtx-750-ti", "gtx-1080-ti", "titan-xp", "rtx-2080-ti", "rtx-3060", "rtx-3070", "rtx-3090",
    "rtx-4090",
}  # fmt: skip

FP32_LANES_PER_SM = {
    (5, 0): 128,  # Maxwell GM107
    (6, 0): 64,  # Pascal GP100
    (6, 1): 128,  # Pascal GP102
    (7, 0): 64,  # Volta
    (7, 5): 64,  # Turing
    (8, 0): 64,  # Ampere GA100
    (8, 6): 128,  # Ampere GA10x
    (8, 9): 128,  # Ada
    (9, 0): 128,  # Hopper
}
"""FP32 lanes per SM (the architecture whitepapers): peak FP32 = SMs x lanes x 2 x boost clock."""


@pytest.fixture(scope="module")
def catalog() -> tuple[GpuSpec, ...]:
    return load_catalog()


def shipped_raw() -> dict[str, Any]:
    text = resources.files("joulecast.hardware").joinpath("gpus.json").read_text("utf-8")
    return json.loads(text)


def by_id(catalog: tuple[GpuSpec, ...]) -> dict[str, GpuSpec]:
    return {spec.id: spec for spec in catalog}


def test_catalog_holds_every_required_gpu(catalog: tuple[GpuSpec, ...]) -> None:
    ids = [spec.id for spec in catalog]
    assert len(catalog) >= 25
    assert len(set(ids)) == len(ids)
    assert not REQUIRED_IDS - set(ids), sorted(REQUIRED_IDS - set(ids))


def test_catalog_is_cached() -> None:
    assert load_catalog() is load_catalog()


def test_measured_hardware_keeps_its_ids_and_facts(catalog: tuple[GpuSpec, ...]) -> None:
    specs = by_id(catalog)
    h200 = specs["h200"]
    assert h200.nvml_names == ("NVIDIA H200",)
    assert (h200.architecture, h200.form_factor) == ("Hopper", "sxm")
    assert (h200.power_limit_w, h200.memory_gib, h200.memory_bandwidth_gbs) == (700, 141, 4800)
    assert h200.idle_power_w == 77
    assert "joulecast" in h200.sources["idle_power"]
    rtx6000 = specs["quadro-rtx6000"]
    assert "Quadro RTX 6000" in rtx6000.nvml_names
    # the Zeus NSDI'23 traces: power limits 100-260 W (RTX 6000), 100-250 W (V100), 125-250 W (P100)
    assert (rtx6000.power_limit_min_w, rtx6000.power_limit_w) == (100, 260)
    assert specs["v100-pcie-32gb"].power_limit_max_w == 250
    assert specs["p100-pcie-16gb"].power_limit_min_w == 125


def test_fp32_peak_is_lanes_times_clock(catalog: tuple[GpuSpec, ...]) -> None:
    """A typo in SMs, clock or TFLOPS shows as a mismatch (vendors round to ~3 digits)."""
    for spec in catalog:
        lanes = FP32_LANES_PER_SM[spec.compute_capability]
        expected = spec.sm_count * lanes * 2 * spec.boost_clock_mhz * 1e6 / 1e12
        assert spec.fp32_tflops == pytest.approx(expected, rel=0.03), spec.id


def test_precisions_are_ordered(catalog: tuple[GpuSpec, ...]) -> None:
    for spec in catalog:
        if spec.fp16_tflops is not None:
            if spec.compute_capability == (6, 1):
                # GP102 runs FP16 arithmetic at 1/64 of the FP32 rate
                assert spec.fp16_tflops == pytest.approx(spec.fp32_tflops / 64, rel=0.03), spec.id
            else:
                assert spec.fp16_tflops >= spec.fp32_tflops, spec.id
        if spec.tensor_fp16_tflops is not None:
            assert spec.tensor_fp16_tflops >= (spec.fp16_tflops or 0) >= 0, spec.id
            # at least twice FP32 on every tensor-core GPU (GeForce Ampere exactly twice; rounded)
            assert spec.tensor_fp16_tflops >= 0.98 * 2 * spec.fp32_tflops, spec.id
        if spec.tensor_tf32_tflops is not None:
            assert spec.tensor_fp16_tflops is not None
            assert spec.tensor_fp16_tflops >= spec.tensor_tf32_tflops >= spec.fp32_tflops, spec.id
        if spec.tensor_bf16_tflops is not None:
            # every catalogued GPU runs BF16 and FP16 tensor math at the same rate
            assert spec.tensor_bf16_tflops == spec.tensor_fp16_tflops, spec.id


def test_units_the_architecture_lacks_are_null(catalog: tuple[GpuSpec, ...]) -> None:
    for spec in catalog:
        if spec.compute_capability < (7, 0):
            assert spec.tensor_fp16_tflops is None, spec.id
        if spec.compute_capability < (8, 0):
            assert spec.tensor_bf16_tflops is None and spec.tensor_tf32_tflops is None, spec.id
        else:
            assert spec.tensor_bf16_tflops is not None and spec.tensor_tf32_tflops is not None


def test_memory_and_power_are_physical(catalog: tuple[GpuSpec, ...]) -> None:
    for spec in catalog:
        assert 1 <= spec.memory_gib <= 192, spec.id
        assert 50 <= spec.memory_bandwidth_gbs <= 10_000, spec.id
        assert 500 <= spec.boost_clock_mhz <= 3000, spec.id
        assert 30 <= spec.power_limit_w <= 1000, spec.id
        low = spec.power_limit_min_w or spec.power_limit_w
        high = spec.power_limit_max_w or spec.power_limit_w
        assert 0 < low <= spec.power_limit_w <= high, spec.id
        if spec.idle_power_w is not None:
            assert 0 < spec.idle_power_w < low, spec.id


def test_hbm_boards_outrun_gddr_boards_of_their_generation(catalog: tuple[GpuSpec, ...]) -> None:
    specs = by_id(catalog)
    assert specs["a100-sxm4-80gb"].memory_bandwidth_gbs > specs["a40"].memory_bandwidth_gbs
    assert specs["h200"].memory_bandwidth_gbs > specs["h100-sxm"].memory_bandwidth_gbs
    assert specs["h100-sxm"].memory_bandwidth_gbs > specs["h100-pcie"].memory_bandwidth_gbs


def test_every_figure_group_cites_a_source(catalog: tuple[GpuSpec, ...]) -> None:
    for spec in catalog:
        assert {"compute", "memory", "power"} <= set(spec.sources), spec.id
        assert set(spec.sources) <= set(SOURCE_GROUPS), spec.id
        assert all(len(text) > 10 for text in spec.sources.values()), spec.id


def test_peak_flops_in_flop_per_second(catalog: tuple[GpuSpec, ...]) -> None:
    specs = by_id(catalog)
    assert peak_flops(specs["h200"], "tensor-bf16") == pytest.approx(989.5e12)
    assert peak_flops(specs["tesla-t4"], "fp32") == pytest.approx(8.1e12)
    assert peak_flops(specs["p100-sxm2"], "tensor-fp16") is None
    for precision in PRECISIONS:
        assert peak_flops(specs["a100-sxm4-80gb"], precision) is not None
    with pytest.raises(InvalidArgument, match="unknown precision"):
        peak_flops(specs["h200"], "fp8")  # type: ignore[arg-type]


def test_to_dict_is_json_with_every_figure(catalog: tuple[GpuSpec, ...]) -> None:
    data = json.loads(json.dumps(by_id(catalog)["a10"].to_dict()))
    assert data["compute_capability"] == "8.6"
    assert data["nvml_names"] == ["NVIDIA A10"]
    assert set(FIGURES) <= data.keys()


def test_the_shipped_file_parses_as_loaded() -> None:
    assert parse_catalog(shipped_raw(), "gpus.json") == load_catalog()


# --- refusals -------------------------------------------------------------------------------


def one_entry(**changes: Any) -> dict[str, Any]:
    """The shipped catalog cut to the T4, with ``changes`` applied (``...`` deletes a field)."""
    raw = shipped_raw()
    entry = copy.deepcopy(next(e for e in raw["gpus"] if e["id"] == "tesla-t4"))
    for key, value in changes.items():
        if value is ...:
            del entry[key]
        else:
            entry[key] = value
    raw["gpus"] = [entry]
    return raw


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"fp32_tflops": -8.1}, "fp32_tflops", "positive number"),
        ({"fp32_tflops": True}, "fp32_tflops", "positive number"),
        ({"memory_bandwidth_gbs": float("nan")}, "memory_bandwidth_gbs", "positive number"),
        ({"memory_gib": ...}, "memory_gib", "missing"),
        ({"power_limit_w": None}, "power_limit_w", "required"),
        ({"tdp_w": 70}, "tdp_w", "unknown field"),
        ({"sm_count": 40.5}, "sm_count", "positive integer"),
        ({"id": "Tesla T4"}, "id", "slug"),
        ({"name": ""}, "name", "non-empty string"),
        ({"nvml_names": []}, "nvml_names", "non-empty list"),
        ({"nvml_names": ["Tesla T4", "Tesla T4"]}, "nvml_names", "twice"),
        ({"architecture": "Blackwell"}, "architecture", "one of"),
        ({"compute_capability": 7.5}, "compute_capability", "like '8.6'"),
        ({"compute_capability": "8.0"}, "compute_capability", "Turing"),
        ({"form_factor": "mxm"}, "form_factor", "one of"),
        ({"tensor_bf16_tflops": 65.0}, "tensor_bf16_tflops", "no such unit"),
        ({"fp16_tflops": None, "notes": []}, "fp16_tflops", "no note names it"),
        ({"power_limit_min_w": 80}, "power_limit_min_w", "above power_limit_w"),
        ({"power_limit_max_w": 60}, "power_limit_max_w", "below power_limit_w"),
        (
            {
                "idle_power_w": 70,
                "sources": {"idle_power": "x", "compute": "x", "memory": "x", "power": "x"},
            },
            "idle_power_w",
            "not below",
        ),
        ({"sources": {"compute": "x", "power": "x"}}, "sources", "'memory'"),
        (
            {"sources": {"compute": "x", "memory": "x", "power": "x", "idle_power": "x"}},
            "sources",
            "null",
        ),
        (
            {"sources": {"compute": "x", "memory": "x", "power": "x", "price": "x"}},
            "sources",
            "unknown group",
        ),
        ({"notes": "none"}, "notes", "list"),
    ],
)
def test_a_malformed_entry_is_refused_naming_entry_and_field(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(one_entry(**changes), "gpus.json")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("gpus.json: entry 0")
    assert f"field {field!r}" in message
    assert reason in message


def test_the_unchanged_entry_is_accepted() -> None:
    (spec,) = parse_catalog(one_entry(), "gpus.json")
    assert spec.id == "tesla-t4"


def test_a_name_shared_by_two_entries_is_refused() -> None:
    raw = one_entry()
    twin = copy.deepcopy(raw["gpus"][0])
    twin.update(id="tesla-t4-copy", name="Another card", nvml_names=["NVIDIA Tesla T4"])
    raw["gpus"].append(twin)
    with pytest.raises(CatalogError, match=r"'tesla-t4-copy'.*also a name of entry 'tesla-t4'"):
        parse_catalog(raw, "gpus.json")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "list 'gpus'"),
        ({"schema_version": 2, "gpus": []}, "schema_version 2"),
        ({"schema_version": 1, "gpus": ["tesla-t4"]}, "entry 0: expected an object"),
    ],
)
def test_a_malformed_catalog_is_refused(data: object, reason: str) -> None:
    with pytest.raises(CatalogError, match=reason):
        parse_catalog(data, "gpus.json")


def test_a_catalog_file_is_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "gpus.json"
    path.write_text(json.dumps(one_entry()), encoding="utf-8")
    assert [spec.id for spec in read_catalog(path)] == ["tesla-t4"]
    with pytest.raises(CatalogError, match="not JSON"):
        parse_catalog_text("{", "gpus.json")
    with pytest.raises(CatalogError, match="cannot read"):
        read_catalog(tmp_path / "missing.json")


def test_the_catalog_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from joulecast.hardware import find_gpu, load_catalog\n"
        "load_catalog(); find_gpu('Tesla T4')\n"
        "heavy = ('numpy', 'torch', 'pandas', 'onnx', 'xgboost', 'sklearn', 'scipy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "[]"
