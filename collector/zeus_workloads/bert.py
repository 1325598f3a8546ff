"""BERT-base uncased (Devlin et al., 2019) with the two heads the Zeus workloads fine-tune.

The encoder is Hugging Face's ``bert-base-uncased`` configuration: a WordPiece vocabulary of
30,522 tokens, 512 positions, 2 token types, 12 layers of width 768 with 12 heads, a 3,072-wide
GELU feed-forward, post-norm residual blocks with layer norm (eps 1e-12). Heads:

- :class:`BertForQuestionAnswering` (SQuAD): a linear layer to (start, end) logits on every
  token, no pooler: 108,893,186 parameters, as ``BertForQuestionAnswering`` has;
- :class:`BertForSequenceClassification` (Sentiment140, 2 labels): the pooler (dense + tanh on
  the [CLS] token) and a linear layer to 2 logits: 109,483,778 parameters.

The input is one row of token ids per sample (int64, at most 512). Segment ids are all 0 and
there is no attention mask (every position is a token): the padding mask adds nothing the
profiler counts, and BERT's cost is the same for real and padded positions. Attention is written
with ``F.scaled_dot_product_attention`` so that the graph holds its two matrix products the way
DeepSpeed counts them (joulecast/graph/RULES.md). Dropout is the identity in the exported
(evaluation) graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VOCAB = 30_522
MAX_POSITIONS = 512
TOKEN_TYPES = 2
LAYERS = 12
WIDTH = 768
HEADS = 12
FEED_FORWARD = 3072
LAYER_NORM_EPS = 1e-12


class _Embeddings(nn.Module):
    """Token + position + segment embeddings, then layer norm."""

    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(VOCAB, WIDTH)
        self.positions = nn.Embedding(MAX_POSITIONS, WIDTH)
        self.token_types = nn.Embedding(TOKEN_TYPES, WIDTH)
        self.norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Position and segment ids are computed from the input, not held as constant buffers:
        # a lookup with constant indices is a constant to the profiler, which would then count
        # the looked-up rows instead of the tables as parameters.
        positions = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
        segments = torch.zeros_like(ids)
        embedded = self.words(ids) + self.positions(positions) + self.token_types(segments)
        return self.norm(embedded)


class _Layer(nn.Module):
    """Self-attention and feed-forward, each added to its input and layer-normed (post-norm)."""

    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(WIDTH, WIDTH)
        self.key = nn.Linear(WIDTH, WIDTH)
        self.value = nn.Linear(WIDTH, WIDTH)
        self.out = nn.Linear(WIDTH, WIDTH)
        self.attention_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)
        self.up = nn.Linear(WIDTH, FEED_FORWARD)
        self.down = nn.Linear(FEED_FORWARD, WIDTH)
        self.output_norm = nn.LayerNorm(WIDTH, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, width = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.reshape(n, t, HEADS, width // HEADS).transpose(1, 2)

        a = F.scaled_dot_product_attention(
            heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        )
        x = self.attention_norm(x + self.out(a.transpose(1, 2).reshape(n, t, width)))
        return self.output_norm(x + self.down(F.gelu(self.up(x))))


class BertEncoder(nn.Module):
    """Embeddings and the 12 layers: token ids (N, L) -> hidden states (N, L, 768)."""

    def __init__(self) -> None:
        super().__init__()
        self.embeddings = _Embeddings()
        self.layers = nn.Sequential(*(_Layer() for _ in range(LAYERS)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.layers(self.embeddings(ids))


class BertForQuestionAnswering(nn.Module):
    """Token ids (N, L) -> (start, end) logits per token (N, L, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = BertEncoder()
        self.span = nn.Linear(WIDTH, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.span(self.encoder(ids))


class BertForSequenceClassification(nn.Module):
    """Token ids (N, L) -> class logits (N, labels), from the pooled [CLS] token."""

    def __init__(self, labels: int = 2) -> None:
        super().__init__()
        self.encoder = BertEncoder()
        self.pooler = nn.Linear(WIDTH, WIDTH)
        self.classifier = nn.Linear(WIDTH, labels)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        cls = self.encoder(ids)[:, 0]
        return self.classifier(torch.tanh(self.pooler(cls)))
