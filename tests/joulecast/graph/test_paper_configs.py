"""The 43 configurations of the paper: profiler == DeepSpeed, exactly, on weightless graphs.

DeepSpeed is run on the very model that is exported. Models are built on the ``meta`` device
and materialised with ``to_empty`` and filled with constants: FLOP and parameter counts do not
depend on weight values, and this skips ~10 s of random initialisation for the 554 M-parameter
MLP. (DeepSpeed itself cannot run on ``meta``: its GRU then goes through a decomposition whose
patched matmuls it counts, and the totals change.)
"""

from __future__ import annotations

import json
from importlib import resources

import pytest
import torch

from collector.flops import deepspeed_cost
from collector.models import INPUT_SHAPE, ModelConfig, build_model
from joulecast.graph import profile_graph
from joulecast.weightless import export_weightless


def _paper_configs() -> list[ModelConfig]:
    plan = json.loads(resources.files("collector").joinpath("plans/paper.json").read_text())
    return [
        ModelConfig(r["family"], tuple(r["layers"]), tuple(r["hidden"]), r.get("rnn_input", "flat"))
        for r in plan["runs"]
    ]


PAPER = _paper_configs()


def test_paper_plan_has_43_configurations() -> None:
    assert len(PAPER) == 43
    assert {c.family for c in PAPER} == {"mlp", "cnn", "rnn", "crnn"}


@pytest.mark.parametrize("config", PAPER, ids=lambda c: c.config_id)
def test_profile_equals_deepspeed(config: ModelConfig) -> None:
    with torch.device("meta"):
        model = build_model(config)
    model = model.to_empty(device="cpu").eval()
    with torch.no_grad():
        # Distinct values: the exporter merges initializers with equal contents (fresh pages
        # are all zeros), which a randomly initialised model never has.
        for i, p in enumerate(model.parameters()):
            p.fill_(1.0 + i / 1024)
    graph = export_weightless(model, torch.zeros(1, *INPUT_SHAPE))
    profile = profile_graph(graph)
    cost = deepspeed_cost(model)
    ds_flops, ds_params = cost.flops_forward, cost.params
    assert profile.flops_forward == ds_flops
    assert profile.params == ds_params
    assert profile.flops_train == 3 * ds_flops
    assert profile.family == config.family, profile.family_reason
    assert profile.warnings == ()
    assert len(graph) < 128 * 1024  # weightless: a few KB whatever the model's size
