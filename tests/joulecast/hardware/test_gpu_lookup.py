"""find_gpu: every name of a catalogued GPU finds it; unknown names find nothing; partial names
are refused with their candidates rather than guessed."""

from __future__ import annotations

import dataclasses

import pytest

from collector.hardware import slug
from joulecast.errors import InvalidArgument
from joulecast.hardware import AmbiguousGpuName, find_gpu, load_catalog


def test_every_id_name_and_nvml_name_finds_its_gpu() -> None:
    for spec in load_catalog():
        for name in (spec.id, spec.name, *spec.nvml_names):
            assert find_gpu(name) is spec, name
            assert find_gpu(name.upper()) is spec, name
            assert find_gpu(f"  {name.replace(' ', '_')} ") is spec, name


def test_the_collectors_default_hardware_id_finds_its_gpu() -> None:
    """A sweep names its rows' hardware slug(torch.cuda.get_device_name()) by default."""
    for spec in load_catalog():
        for name in spec.nvml_names:
            assert find_gpu(slug(name)) is spec, slug(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tesla T4", "tesla-t4"),
        ("tesla-t4", "tesla-t4"),
        ("NVIDIA Tesla T4", "tesla-t4"),
        ("t4", "tesla-t4"),
        ("TESLA_T4", "tesla-t4"),
        ("NVIDIA H200", "h200"),
        ("nvidia-h200", "h200"),
        ("Quadro RTX 6000", "quadro-rtx6000"),
        ("quadro_rtx_6000", "quadro-rtx6000"),
        ("Tesla V100-PCIE-32GB", "v100-pcie-32gb"),
        ("tesla-v100-pcie-32gb", "v100-pcie-32gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-sxm4-80gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("GeForce RTX 2080 Ti", "rtx-2080-ti"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("RTX 4090", "rtx-4090"),
        ("TITAN Xp", "titan-xp"),
        ("NVIDIA A10", "a10"),
        ("L4", "l4"),
    ],
)
def test_names_people_and_drivers_write(name: str, expected: str) -> None:
    found = find_gpu(name)
    assert found is not None and found.id == expected


@pytest.mark.parametrize(
    "name",
    [
        "NVIDIA GeForce RTX 3080",
        "NVIDIA GeForce RTX 3060 Ti",
        "NVIDIA GeForce RTX 4090 Laptop GPU",
        "AMD Instinct MI300X",
        "cpu-amd-epyc",
        "xeon-gold-5120-2c",
        "",
        "NVIDIA",
    ],
)
def test_an_unknown_name_finds_nothing(name: str) -> None:
    assert find_gpu(name) is None


@pytest.mark.parametrize(
    ("name", "candidates"),
    [
        ("a100", {"a100-pcie-40gb", "a100-sxm4-40gb", "a100-pcie-80gb", "a100-sxm4-80gb"}),
        ("A100 80GB", {"a100-pcie-80gb", "a100-sxm4-80gb"}),
        ("Tesla V100", {"v100-pcie-16gb", "v100-pcie-32gb", "v100-sxm2-16gb", "v100-sxm2-32gb"}),
        ("V100 PCIe", {"v100-pcie-16gb", "v100-pcie-32gb"}),
        ("H100", {"h100-pcie", "h100-sxm"}),
        ("P100", {"p100-pcie-16gb", "p100-sxm2"}),
        ("RTX 6000", {"quadro-rtx6000", "rtx-6000-ada"}),
        # one candidate is still refused: a GTX 1080 is not the catalogued GTX 1080 Ti
        ("GeForce GTX 1080", {"gtx-1080-ti"}),
    ],
)
def test_a_partial_name_is_refused_with_its_candidates(name: str, candidates: set[str]) -> None:
    with pytest.raises(AmbiguousGpuName) as caught:
        find_gpu(name)
    assert set(caught.value.candidates) == candidates
    message = str(caught.value)
    assert "\n" not in message
    assert all(c in message for c in candidates)
    assert isinstance(caught.value, InvalidArgument)


def test_a_long_candidate_list_is_cut() -> None:
    with pytest.raises(AmbiguousGpuName, match=r"and [0-9]+ more") as caught:
        find_gpu("RTX")
    assert len(caught.value.candidates) > 8


def test_a_given_catalog_is_searched_and_a_shared_name_is_ambiguous() -> None:
    t4 = find_gpu("tesla-t4")
    assert t4 is not None
    twin = dataclasses.replace(t4, id="tesla-t4-twin")
    assert find_gpu("a100", catalog=[t4]) is None
    assert find_gpu("Tesla T4", catalog=[t4]) is t4
    with pytest.raises(AmbiguousGpuName) as caught:
        find_gpu("Tesla T4", catalog=[t4, twin])
    assert set(caught.value.candidates) == {"tesla-t4", "tesla-t4-twin"}
