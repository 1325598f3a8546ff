"""NAS-Bench-101 networks rebuilt from cell specs: parameters equal EC-NAS-Bench's, shapes work."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch
from torch import nn

from collector import nasbench101 as nb
from collector.flops import deepspeed_cost
from joulecast.errors import InvalidArgument

ARCHITECTURES = Path(__file__).parent.parent / "data" / "ecnas" / "architectures.csv"


def _architectures() -> list[tuple[str, list[list[int]], list[int], int]]:
    with ARCHITECTURES.open(newline="") as fh:
        return [
            (
                row["hash"],
                [[int(c) for c in r] for r in row["matrix"].split(";")],
                [int(o) for o in row["ops"].split()],
                int(row["trainable_params"]),
            )
            for row in csv.DictReader(fh)
        ]


ALL = _architectures()
TRUNCATING = [
    [0, 1, 0, 0, 0],
    [0, 0, 1, 1, 1],
    [0, 0, 0, 0, 1],
    [0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0],
]
"""Vertex 1 (43 channels) feeds vertex 3 (42 channels): its first 42 channels are kept."""


def test_every_architecture_has_the_stored_trainable_params() -> None:
    assert len(ALL) == 2532
    wrong = [
        (h, nb.count_params(nb.CellSpec.from_lists(m, o)), want)
        for h, m, o, want in ALL
        if nb.count_params(nb.CellSpec.from_lists(m, o)) != want
    ]
    assert wrong == []


def _sample() -> list[tuple[str, list[list[int]], list[int], int]]:
    """Every vertex count and every op at least once, plus a fixed random draw."""
    chosen: dict[object, tuple] = {}
    for arch in ALL:
        _, m, o, _ = arch
        chosen.setdefault(len(m), arch)
        chosen.setdefault(tuple(sorted(set(o))), arch)
    rng = random.Random(101)
    return [*chosen.values(), *rng.sample(ALL, 12)]


@pytest.mark.parametrize("arch", _sample(), ids=lambda a: a[0][:8])
def test_built_model_counts_what_count_params_counts(arch) -> None:
    _, m, o, want = arch
    model = nb.build(m, o, device="meta")
    assert nb.trainable_params(model) == want


@pytest.mark.slow
def test_all_built_models_match_the_stored_params(monkeypatch: pytest.MonkeyPatch) -> None:
    # On ``meta`` the initialisers write nothing (a meta tensor has no values) but cost half
    # of each build; the parameters, their shapes and requires_grad are made before them.
    for module in (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.Linear):
        monkeypatch.setattr(module, "reset_parameters", lambda self: None)
    wrong = [h for h, m, o, want in ALL if nb.trainable_params(nb.build(m, o, "meta")) != want]
    assert wrong == []


def test_vertex_channels_split_the_output_and_feed_the_widest_successor() -> None:
    # three vertices feed the output: 128 = 43 + 43 + 42, the first ones get the remainder
    assert nb.vertex_channels(128, 128, TRUNCATING) == [128, 43, 43, 42, 128]
    # 1 feeds only 2 and 3 (not the output): it takes the wider of them
    matrix = [
        [0, 1, 0, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0],
    ]
    assert nb.vertex_channels(64, 256, matrix) == [64, 128, 128, 128, 256]


def test_forward_gives_ten_logits_and_trains() -> None:
    model = nb.build(TRUNCATING, [-1, 1, 2, 0, -2])
    x = torch.randn(2, *nb.INPUT_SHAPE)
    out = model(x)
    assert out.shape == (2, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_input_wired_to_output_only() -> None:
    model = nb.build([[0, 1], [0, 0]], [-1, -2])
    assert model(torch.zeros(1, *nb.INPUT_SHAPE)).shape == (1, 10)
    spec = nb.CellSpec.from_lists([[0, 1], [0, 0]], [-1, -2])
    assert nb.trainable_params(model) == nb.count_params(spec)


def test_dangling_vertices_are_pruned() -> None:
    # vertex 2 is not on a path to the output: the spec equals the one without it
    dangling = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]]
    spec = nb.CellSpec.from_lists(dangling, [-1, 0, 1, -2])
    assert spec == nb.CellSpec.from_lists([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [-1, 0, -2])
    assert spec.ops == (nb.INPUT, nb.CONV3X3, nb.OUTPUT)


@pytest.mark.parametrize(
    ("matrix", "ops", "words"),
    [
        ([[0, 1], [0, 0]], [-1], "ops for"),
        ([[0, 1], [1, 0]], [-1, -2], "upper"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [-1, 7, -2], "unknown op"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [-1, 0, -2], "not reachable"),
        ([[0, 1], [0, 0]], [0, -2], "first vertex"),
    ],
)
def test_bad_specs_are_refused(matrix, ops, words) -> None:
    with pytest.raises(InvalidArgument, match=words):
        nb.CellSpec.from_lists(matrix, ops)


@pytest.mark.parametrize(
    ("matrix", "ops"),
    [
        (TRUNCATING, [-1, 1, 2, 0, -2]),
        ([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [-1, 2, 2, -2]),
        ([[0, 1], [0, 0]], [-1, -2]),
    ],
    ids=["truncating", "maxpools", "input-to-output"],
)
def test_weightless_graph_profiles_like_deepspeed(matrix, ops) -> None:
    from joulecast.graph import profile_graph

    model = nb.build(matrix, ops)
    graph = nb.export_onnx(model)
    profile = profile_graph(graph)
    cost = deepspeed_cost(model, (1, *nb.INPUT_SHAPE))
    flops, params = cost.flops_forward, cost.params
    assert profile.family == "cnn"
    assert profile.params == params == nb.trainable_params(model)
    assert profile.flops_forward == flops
    assert profile.warnings == ()
    assert len(graph) < 200_000  # weightless: shapes only
