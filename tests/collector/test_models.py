"""The four families: output shapes and parameter counts by hand, from the definitions in docs/PAPER.md."""

import pytest
import torch

from collector.models import ModelConfig, build_model, count_params
from collector.plans import load_plan
from joulecast.errors import InvalidArgument


def gru_params(inp: int, h: int, layers: int) -> int:
    first = 3 * (h * inp + h * h + 2 * h)
    rest = 3 * (h * h + h * h + 2 * h)
    return first + (layers - 1) * rest


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (ModelConfig("mlp", (1,), (512,)), 8192 * 512 + 512 + 512 * 10 + 10),
        (ModelConfig("mlp", (4,), (1024,)), 8192 * 1024 + 1024 + 3 * (1024 * 1024 + 1024) + 10250),
        (ModelConfig("cnn", (1,), (128,)), 128 * 9 + 128 + 128 * 64 * 32 * 10 + 10),
        (
            ModelConfig("cnn", (2,), (256,)),
            (256 * 9 + 256) + (256 * 256 * 9 + 256) + 256 * 32 * 16 * 10 + 10,
        ),
        (ModelConfig("rnn", (2,), (2048,)), gru_params(8192, 2048, 2) + 2048 * 10 + 10),
        (
            ModelConfig("rnn", (1,), (128,), "frames"),
            gru_params(128, 128, 1) + 128 * 10 + 10,
        ),
        (
            ModelConfig("crnn", (1, 2), (512, 256)),
            (512 * 9 + 512) + gru_params(512, 256, 2) + 256 * 10 + 10,
        ),
    ],
    ids=lambda v: v.config_id if isinstance(v, ModelConfig) else None,
)
def test_param_counts_match_the_definition(config: ModelConfig, expected: int) -> None:
    assert count_params(build_model(config)) == expected


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig("mlp", (1,), (64,)),
        ModelConfig("cnn", (6,), (8,)),
        ModelConfig("rnn", (2,), (32,)),
        ModelConfig("rnn", (2,), (32,), "frames"),
        ModelConfig("crnn", (2, 2), (16, 8)),
    ],
    ids=lambda c: c.config_id,
)
def test_outputs_are_probabilities_for_ten_classes(config: ModelConfig) -> None:
    out = build_model(config)(torch.randn(3, 1, 128, 64))
    assert out.shape == (3, 10)
    assert bool(((out > 0) & (out < 1)).all())


def test_crnn_permutes_positions_and_channels() -> None:
    """The GRU must see (batch, positions, channels): one step per spectrogram position."""
    model = build_model(ModelConfig("crnn", (2, 1), (16, 8)))
    seen: list[torch.Size] = []
    model.gru.register_forward_hook(lambda m, inp, out: seen.append(inp[0].shape))
    model(torch.randn(2, 1, 128, 64))
    assert seen == [torch.Size([2, 32 * 16, 16])]


def test_paper_plan_has_the_43_configurations_of_the_paper() -> None:
    plan = load_plan("paper")
    families = [r.config.family for r in plan.runs]
    assert len(plan.runs) == 43
    assert {f: families.count(f) for f in set(families)} == {
        "mlp": 10,
        "cnn": 12,
        "rnn": 11,
        "crnn": 10,
    }
    assert {r.samples for r in plan.runs} == {1578}
    assert {r.batch_size for r in plan.runs} == {8}
    ids = {r.config.config_id for r in plan.runs}
    assert {"crnn-n2,2-h728,256", "rnn-n14-h2048", "mlp-n32-h4096", "cnn-n6-h768"} <= ids


def test_smoke_plan_is_the_paper_plan_with_few_samples() -> None:
    paper, smoke = load_plan("paper"), load_plan("smoke")
    assert [r.config for r in smoke.runs] == [r.config for r in paper.runs]
    assert max(r.samples for r in smoke.runs) <= 16


def test_variant_plans_expand_lists() -> None:
    sizes = load_plan("dataset-size")
    assert len(sizes.runs) == 8 * 4
    assert sorted({r.samples for r in sizes.runs}) == [197, 394, 789, 1578]
    frames = load_plan("rnn-frames")
    assert {r.config.rnn_input for r in frames.runs} == {"frames"}
    batches = load_plan("batch-size")
    assert {r.batch_size for r in batches.runs} == {1, 4, 16, 32}


def test_samples_override_and_bad_plans() -> None:
    assert {r.samples for r in load_plan("paper", samples=40).runs} == {40}
    with pytest.raises(Exception, match="unknown plan 'nope'"):
        load_plan("nope")
    with pytest.raises(InvalidArgument):
        ModelConfig("perceiver", (1,), (1,))
    with pytest.raises(InvalidArgument):
        ModelConfig("cnn", (1, 2), (1, 2))
