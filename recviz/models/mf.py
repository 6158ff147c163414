"""Matrix factorisation baselines trained with the same loop as the neural models.

- `MF` (`mf`): the biased dot product ŷ_ui = p_u·q_i + b_u + b_i + b, learned with NCF's log loss
  and sampled negatives. Rendle et al. 2020 ("Neural Collaborative Filtering vs. Matrix
  Factorization Revisited", RecSys) show that this well-tuned dot product matches or beats NeuMF,
  so it is the yardstick every neural number should be read against.
- `BPRMF` (`bpr`): the plain dot product p_u·q_i (eq. 2 of the NCF paper) learned with BPR's pairwise
  loss −log σ(x_ui − x_uj), one sampled negative per positive (Rendle et al. 2009) — the BPR baseline
  of the NCF paper.

Embeddings start at N(0, 0.01²) like NCF's, biases at zero.
The defaults are declared in `recviz.models.mf_spec`; how they were chosen is in docs/experiments.md.
"""

from __future__ import annotations

import torch
from torch import nn

from recviz.models import mf_spec
from recviz.models.ncf import gaussian_embedding
from recviz.models.torch_base import TorchRecommender


class DotNet(nn.Module):
    """p_u·q_i, plus b_u + b_i + b when `biases`."""

    def __init__(self, n_users: int, n_items: int, dim: int, biases: bool):
        super().__init__()
        self.user, self.item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)
        self.biases = biases
        if biases:
            self.user_bias, self.item_bias = nn.Embedding(n_users, 1), nn.Embedding(n_items, 1)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user(users) * self.item(items)).sum(-1)
        if not self.biases:
            return dot
        return dot + self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1) + self.bias


class MF(TorchRecommender):
    """Biased MF with log loss and `neg_ratio` negatives per positive (Rendle et al. 2020)."""

    spec = mf_spec.MF
    loss_kind = "pointwise"

    def build_module(self, n_users: int, n_items: int) -> DotNet:
        return DotNet(n_users, n_items, self.opts.emb_dim, biases=True)


class BPRMF(MF):
    """MF with BPR's pairwise loss, one sampled negative per positive (Rendle et al. 2009)."""

    spec = mf_spec.BPR
    loss_kind = "pairwise"

    def build_module(self, n_users: int, n_items: int) -> DotNet:
        return DotNet(n_users, n_items, self.opts.emb_dim, biases=False)
