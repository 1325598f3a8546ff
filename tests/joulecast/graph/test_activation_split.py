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
