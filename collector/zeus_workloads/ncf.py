"""NeuMF (He et al., 2017, "Neural Collaborative Filtering") as trained on MovieLens-1M.

Generalised matrix factorisation and an MLP side by side, their last layers concatenated into
one logit. The configuration is the defaults of guoyang9/NCF's ``main.py`` (the PyTorch NeuMF
whose MovieLens-1M NDCG@10 of 0.424 the Zeus target of 0.41 sits under): 32 predictive factors,
3 MLP layers (the MLP embeddings are 32 x 2^(3-1) = 128 wide; the tower is 256 -> 128 -> 64 ->
32), no dropout, users and items numbered as in He et al.'s ``ml-1m.train.rating`` (6,040 users,
3,706 items).

The input is one (user, item) pair of ids per sample, shape (N, 2), int64. The network ends at
the logit: the sigmoid belongs to the binary cross-entropy loss.
"""

from __future__ import annotations

import torch
from torch import nn

USERS = 6040
ITEMS = 3706
FACTORS = 32
MLP_LAYERS = 3


class NeuMF(nn.Module):
    """(user, item) ids (N, 2) -> interaction logit (N,)."""

    def __init__(
        self,
        users: int = USERS,
        items: int = ITEMS,
        factors: int = FACTORS,
        layers: int = MLP_LAYERS,
    ) -> None:
        super().__init__()
        mlp_width = factors * 2 ** (layers - 1)
        self.user_gmf = nn.Embedding(users, factors)
        self.item_gmf = nn.Embedding(items, factors)
        self.user_mlp = nn.Embedding(users, mlp_width)
        self.item_mlp = nn.Embedding(items, mlp_width)
        tower: list[nn.Module] = []
        width = 2 * mlp_width
        for _ in range(layers):
            tower += [nn.Linear(width, width // 2), nn.ReLU()]
            width //= 2
        self.tower = nn.Sequential(*tower)
        self.predict = nn.Linear(factors + width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        user, item = x[:, 0], x[:, 1]
        gmf = self.user_gmf(user) * self.item_gmf(item)
        mlp = self.tower(torch.cat([self.user_mlp(user), self.item_mlp(item)], dim=-1))
        return self.predict(torch.cat([gmf, mlp], dim=-1)).reshape(-1)
