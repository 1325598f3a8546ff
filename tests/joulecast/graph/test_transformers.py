"""Attention and transformers: both exporters, within 1 % of DeepSpeed, params exact.

Parameters are set to distinct non-zero values before export: the dynamo exporter's optimiser
drops an all-zero Gemm bias (nn.MultiheadAttention initialises its out_proj bias to 0), and
the legacy exporter merges equal-valued initializers (RULES.md, "Known deviations").
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from testkit import export_graph
from torch import nn

from collector.flops import deepspeed_cost
from collector.models import INPUT_SHAPE
from joulecast.graph import profile_graph

X = torch.zeros(1, *INPUT_SHAPE)


class Encoder(nn.Module):
    """64 frames of 128 mels -> Linear(192) -> nn.TransformerEncoder (2 layers, 4 heads)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(128, 192)
        layer = nn.TransformerEncoderLayer(192, 4, 384, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.proj(x.squeeze(1).transpose(1, 2)))


class MHA(nn.Module):
    def __init__(self, need_weights: bool) -> None:
        super().__init__()
        self.m = nn.MultiheadAttention(64, 4, batch_first=True)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.squeeze(1)
        return self.m(x, x, x, need_weights=self.need_weights)[0]


class SDPA(nn.Module):
    """Hand-written attention: a packed qkv Linear, chunk, F.scaled_dot_product_attention."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.qkv, self.o = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.heads, self.d = heads, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.squeeze(1)
        b, t, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(b, t, self.heads, self.d // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(q), split(k), split(v))
        return self.o(a.transpose(1, 2).reshape(b, t, self.d))


class Conformer(nn.Module):
    """One conformer block over 128 frames of 64: half FFN, MHSA, conv module, half FFN."""

    def __init__(self, d: int = 64, heads: int = 4) -> None:
        super().__init__()

        def ffn() -> nn.Module:
            return nn.Sequential(
                nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.SiLU(), nn.Linear(2 * d, d)
            )

        self.ff1, self.ff2 = ffn(), ffn()
        self.ln, self.mha = nn.LayerNorm(d), nn.MultiheadAttention(d, heads, batch_first=True)
        self.conv_ln = nn.LayerNorm(d)
        self.conv = nn.Sequential(
            nn.Conv1d(d, 2 * d, 1),
            nn.GLU(dim=1),
            nn.Conv1d(d, d, 7, padding=3, groups=d),
            nn.BatchNorm1d(d),
            nn.SiLU(),
            nn.Conv1d(d, d, 1),
        )
        self.out = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.squeeze(1)
        x = x + 0.5 * self.ff1(x)
        y = self.ln(x)
        x = x + self.mha(y, y, y, need_weights=False)[0]
        x = x + self.conv(self.conv_ln(x).transpose(1, 2)).transpose(1, 2)
        return self.out(x + 0.5 * self.ff2(x))


MODELS = {
    "transformer-encoder": Encoder,
    "multihead-attention": lambda: MHA(need_weights=False),
    "multihead-attention-weights": lambda: MHA(need_weights=True),
    "sdpa-hand-written": SDPA,
    "conformer": Conformer,
}
CASES = [(m, e) for m in MODELS for e in ("legacy", "dynamo")]
# The dynamo exporter takes seconds a model: its cases run with the slow tests (CI runs all).
PARAMS = [
    pytest.param(m, e, id=f"{m}-{e}", marks=[pytest.mark.slow] if e == "dynamo" else [])
    for m, e in CASES
]
# dynamo folds eval-mode BatchNorm into the convolution (RULES.md): its 2*C affine params
# and 2*elements FLOPs are not in the graph.
BN_FOLDED = {("conformer", "dynamo"): 2 * 64}


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = MODELS[name]().eval()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.add_(0.01 + i / 1024)
    return model


def _export(model: nn.Module, exporter: str) -> bytes:
    return export_graph(model, X, exporter)


class _Graphs(dict):
    """(model, exporter) -> (model, graph), exported on first use."""

    def __missing__(self, key: tuple[str, str]) -> tuple[nn.Module, bytes]:
        model = _model(key[0])
        self[key] = model, _export(model, key[1])
        return self[key]


@pytest.fixture(scope="module")
def graphs() -> _Graphs:
    """Legacy graphs are exported before DeepSpeed runs; dynamo ones on first use (slow
    tests), each before its own DeepSpeed run; these models do not meet the GRU leak that
    test_ops.py guards against."""
    out = _Graphs()
    for name in MODELS:
        out[name, "legacy"]
    return out


@pytest.mark.parametrize(("name", "exporter"), PARAMS)
def test_transformer_matches_deepspeed(name: str, exporter: str, graphs: _Graphs) -> None:
    model, graph = graphs[name, exporter]
    profile = profile_graph(graph)
    cost = deepspeed_cost(model)
    ds_flops, ds_params = cost.flops_forward, cost.params
    assert profile.flops_forward == pytest.approx(ds_flops, rel=0.01), profile.warnings
    assert profile.params == ds_params - BN_FOLDED.get((name, exporter), 0)
    assert profile.family == "transformer", profile.family_reason
    assert not any("unknown" in w for w in profile.warnings), profile.warnings


def test_attention_matmuls_are_counted_exactly(graphs: _Graphs) -> None:
    """sdpa = its two matmuls (DeepSpeed's _attn_flops_compute), no softmax: exact."""
    model, graph = graphs["sdpa-hand-written", "legacy"]
    assert profile_graph(graph).flops_forward == deepspeed_cost(model).flops_forward


def test_conformer_is_a_transformer_with_convolutions(graphs: _Graphs) -> None:
    profile = profile_graph(graphs["conformer", "legacy"][1])
    assert profile.family == "transformer"
    assert "convolution" in profile.family_reason
    assert profile.flops_by_kind["conv"] > 0 and profile.flops_by_kind["dense"] > 0
