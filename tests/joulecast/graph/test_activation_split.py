"""Activation bytes split by the kind of node that writes them (what the roofline needs to tell a
short-reduction convolution, bound by its output, from a long one, bound by its FLOPs)."""

from __future__ import annotations

import torch
from torch import nn

from joulecast.graph import profile_graph
from joulecast.graph.record import FLOP_KINDS
from joulecast.weightless import export_weightless

MELS, FRAMES = 16, 8


def _profile(model: nn.Module) -> object:
    return profile_graph(export_weightless(model.eval(), torch.zeros(2, 1, MELS, FRAMES)))


def test_conv_bytes_are_the_convolution_outputs_and_the_kinds_add_up() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1024, 10),
    )
    profile = _profile(model)
    by_kind = profile.activation_bytes_by_kind
    assert set(by_kind) == set(FLOP_KINDS)
    assert sum(by_kind.values()) == profile.activation_bytes
    assert by_kind["conv"] == 32 * MELS * FRAMES * 4  # one float32 output map per sample
    assert by_kind["dense"] == 10 * 4
    # ReLU (full map), MaxPool (a quarter), Flatten (a view of the quarter) are not convolutions
    assert by_kind["other"] >= 32 * MELS * FRAMES * 4 + 2 * 32 * MELS * FRAMES
    assert profile.features()["activation_bytes_conv"] == by_kind["conv"]


def test_a_graph_without_convolutions_writes_no_conv_bytes() -> None:
    profile = _profile(nn.Sequential(nn.Flatten(), nn.Linear(MELS * FRAMES, 64), nn.ReLU()))
    assert profile.activation_bytes_by_kind["conv"] == 0
    assert profile.activation_bytes_by_kind["dense"] == 64 * 4
    assert profile.to_dict()["activation_bytes_by_kind"]["conv"] == 0


def test_large_tensors_are_those_of_32_mib_at_the_batch() -> None:
    from joulecast.graph.record import LARGE_TENSOR_BYTES, large_activation_bytes

    # the paper's 1-layer 1024-unit MLP: its first weight is exactly 32 MiB, the second 40 KiB
    profile = _profile_of(nn.Sequential(nn.Flatten(), nn.Linear(8192, 1024), nn.Linear(1024, 10)))
    assert profile.weight_bytes_large == LARGE_TENSOR_BYTES == 8192 * 1024 * 4
    assert profile.weight_bytes - profile.weight_bytes_large == (1024 + 1024 * 10 + 10) * 4
    sizes = dict(profile.activation_sizes)
    assert sizes[8192 * 4] >= 1 and sizes[1024 * 4] == 1  # flattened input, first layer's output
    # a 1024-float activation reaches 32 MiB only at a batch of 8,192
    assert large_activation_bytes(profile, 1) == 0
    assert large_activation_bytes(profile, 1024) == 8192 * 4 * sizes[8192 * 4]
    assert large_activation_bytes(profile, 8192) >= 8192 * 4 * sizes[8192 * 4] + 1024 * 4


def _profile_of(model: nn.Module) -> object:
    return profile_graph(export_weightless(model.eval(), torch.zeros(2, 1, 128, 64)))
