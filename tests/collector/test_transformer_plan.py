"""The transformer family of the collector: every configuration of the shipped plan
trains, exports (legacy exporter, as the runner does) and profiles as ``transformer`` with
DeepSpeed's FLOPs and parameters; the real runner measures two of them into a real store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from collector.cli import plans_command
from collector.flops import deepspeed_cost
from collector.models import INPUT_SHAPE, ModelConfig, build_model, count_params
from collector.plans import load_plan
from estimator.dataset import from_store
from joulecast.errors import InvalidArgument
from joulecast.graph import profile_graph
from joulecast.store import MeasurementStore
from joulecast.weightless import export_weightless

REPO = Path(__file__).parents[2]
PLAN = load_plan("transformer")
CONFIGS = list(dict.fromkeys(r.config for r in PLAN.runs))


def test_the_plan_spans_depth_width_and_heads_and_has_conformers() -> None:
    patch = [c for c in CONFIGS if c.block == "patch"]
    conformer = [c for c in CONFIGS if c.block == "conformer"]
    assert len(patch) >= 12 and len(conformer) >= 3
    assert {c.family for c in CONFIGS} == {"transformer"}
    assert len({c.config_id for c in CONFIGS}) == len(CONFIGS) == len(PLAN.runs)
    assert len({c.layers[0] for c in patch}) >= 4
    assert len({c.hidden[0] for c in patch}) >= 4
    assert len({c.hidden[1] for c in patch}) >= 3
    assert {(r.samples, r.batch_size, r.epochs) for r in PLAN.runs} == {(1578, 8, 1)}
    assert "transformer-n4-h192,4" in {c.config_id for c in patch}
    assert "transformer-conformer-n2-h144,4" in {c.config_id for c in conformer}


def _block_params(w: int) -> int:
    """Pre-norm encoder block: LayerNorm, q/k/v and output projections, LayerNorm + 4w FFN."""
    attention = 2 * w + (3 * w * w + 3 * w) + (w * w + w)
    ffn = 2 * w + (4 * w * w + 4 * w) + (4 * w * w + w)
    return attention + ffn


def _conformer_block_params(w: int) -> int:
    ffn = 2 * w + (4 * w * w + 4 * w) + (4 * w * w + w)
    attention = 2 * w + (3 * w * w + 3 * w) + (w * w + w)
    conv = 2 * w + (2 * w * w + 2 * w) + (15 * w + w) + 2 * w + (w * w + w)
    return 2 * ffn + attention + conv + 2 * w


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            ModelConfig("transformer", (2,), (64, 4)),
            (64 * 64 + 64) + 128 * 64 + 2 * _block_params(64) + (2 * 64 + 64 * 10 + 10),
        ),
        (
            ModelConfig("transformer", (2,), (144, 4), block="conformer"),
            (128 * 144 + 144) + 2 * _conformer_block_params(144) + (2 * 144 + 144 * 10 + 10),
        ),
    ],
    ids=lambda v: v.config_id if isinstance(v, ModelConfig) else None,
)
def test_param_counts_match_the_definition(config: ModelConfig, expected: int) -> None:
    assert count_params(build_model(config)) == expected


def test_config_ids_and_validation() -> None:
    assert ModelConfig("transformer", (4,), (192, 4)).config_id == "transformer-n4-h192,4"
    assert ModelConfig("transformer", (4,), (192, 4)).block == "patch"
    conformer = ModelConfig("transformer", (2,), (144, 4), block="conformer")
    assert conformer.config_id == "transformer-conformer-n2-h144,4"
    assert ModelConfig("cnn", (2,), (384,)).config_id == "cnn-n2-h384"
    with pytest.raises(InvalidArgument, match="multiple of 5 heads"):
        ModelConfig("transformer", (1,), (64, 5))
    with pytest.raises(InvalidArgument, match="block must be one of"):
        ModelConfig("transformer", (1,), (64, 4), block="perceiver")
    with pytest.raises(InvalidArgument, match="transformer family only"):
        ModelConfig("cnn", (1,), (64,), block="patch")
    with pytest.raises(InvalidArgument, match="2 hidden size"):
        ModelConfig("transformer", (1,), (64,))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.config_id)
def test_every_plan_config_trains_and_profiles_like_deepspeed(config: ModelConfig) -> None:
    torch.manual_seed(0)
    model = build_model(config)
    out = model(torch.randn(2, *INPUT_SHAPE))
    assert out.shape == (2, 10) and bool(((out > 0) & (out < 1)).all())
    nn.BCELoss()(out, torch.ones(2, 10)).backward()
    assert all(p.grad is not None and bool(p.grad.isfinite().all()) for p in model.parameters())

    profile = profile_graph(export_weightless(model, torch.zeros(1, *INPUT_SHAPE)))
    ds = deepspeed_cost(model)
    assert profile.family == "transformer", profile.family_reason
    assert profile.flops_forward == pytest.approx(ds.flops_forward, rel=0.01)
    assert profile.params == ds.params == count_params(model)
    assert not any("unknown" in w for w in profile.warnings), profile.warnings


def test_plans_lists_the_transformer_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert plans_command(None) == 0  # type: ignore[arg-type]
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("transformer "))
    assert f"{len(PLAN.runs)} runs" in line


def test_two_transformers_through_the_real_runner(tmp_path: Path) -> None:
    """A patch encoder and a conformer of the plan, measured by ``joulecast collect``."""
    picked = [CONFIGS[0], next(c for c in CONFIGS if c.block == "conformer")]
    runs = [
        {"family": c.family, "layers": list(c.layers), "hidden": list(c.hidden), "block": c.block}
        for c in picked
    ]
    plan = tmp_path / "two.json"
    plan.write_text(json.dumps({"name": "transformer-smoke", "runs": runs}))
    db = tmp_path / "m.db"
    args = ["collect", "--plan", str(plan), "--db", str(db), "--meter", "cpu-time"]
    done = subprocess.run(
        [sys.executable, "-m", "joulecast.cli", *args, "--samples", "8", "--repeats", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    # CPU seconds x a power: the command says, as its last word, that no meter read them
    assert "NOTE: energy in these rows is ESTIMATED (no power meter" in done.stderr
    with MeasurementStore(db, read_only=True) as store:
        rows = store.rows()
        graphs = {r.config_id: store.get_graph(r.graph_sha256) for r in rows}
    assert {(r.config_id, r.phase) for r in rows} == {
        (c.config_id, p) for c in picked for p in ("train", "test")
    }
    for row in rows:
        assert row.status == "ok" and row.family == "transformer"
        assert row.energy_source == "estimate-cpu-time" and row.energy_is_estimate
        assert row.samples == 8 and row.energy_j > 0 and row.duration_s > 0
        assert row.flops_train == 3 * row.flops_forward > 0
    for config_id, graph in graphs.items():
        assert graph is not None and profile_graph(graph).family == "transformer", config_id
    features = from_store(db).frame  # the estimator re-profiles the stored graphs
    assert len(features) == 4 and set(features["family"]) == {"transformer"}
    stored = {r.run_key: r.flops_forward for r in rows}
    for key, flops in zip(features["run_key"], features["flops_forward"], strict=True):
        assert flops == pytest.approx(stored[key], rel=0.01)
