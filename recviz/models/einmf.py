"""EINMF — neural matrix factorisation integrating explicit and implicit feedback (the EINMF paper
in Computational Intelligence and Neuroscience, §3; text in shared/papers/einmf.txt).

Embeddings (§3.2): every user has an explicit and an implicit vector, p_u^E and p_u^I, every item
q_i^E and q_i^I, all `emb_dim` wide, N(0, 0.01²) (§4.3.1). They are *added*:
P_u = p_u^E + p_u^I, Q_i = q_i^E + q_i^I (the paper's "explicit-implicit feedback vectors are added
to complement each other"). Note: as plain id lookups the two tables only ever appear as their
sum, so both get the same gradient; together they act as one table (with twice Adam's step). We
keep both because the paper describes them, and `item_embeddings` returns the sum Q_i.

Hybrid layer (eq. 9–11): a GMF branch φ_dot = P_u ⊙ Q_i and an MLP branch over [P_u; Q_i]
(2·emb_dim wide) with one Linear + ReLU (+ dropout) per width of `layers` — here `layers` lists the
*hidden* widths after the input, unlike NCF's MLP whose first width is the input (EINMF's input
width is fixed by emb_dim). ŷ = σ(hᵀ[φ_dot; φ_MLP]); the module returns the logit and σ lives in the
loss. Hidden layers Glorot-uniform and h LeCun-uniform as in NCF's code (EINMF builds on NeuMF;
a tower of N(0, 0.01²) layers would start with a vanishing MLP branch). Dropout (the paper's
"discard rate", 0.2) follows every hidden ReLU; the RunConfig default is 0.

Loss (eq. 14–16): L = η·L_I + (1−η)·L_E, both cross entropies on the same ŷ:
- L_I (eq. 15): target ir_ui = 1 for train pairs, 0 for sampled negatives;
- L_E (eq. 14): target r_ui / Max(R), Max(R) the largest *train* rating (a pair rated twice:
  its latest rating), and 0 for sampled negatives (they have no rating).
Cross entropy is linear in its target, so L = BCE(ŷ, η·ir + (1−η)·r/Max(R)) — one log loss against
a soft label. At the endpoints this is exact in floating point (1·x + 0·y = x for finite y):
η = 1 is the implicit-only loss, η = 0 the explicit-only loss. The paper's best η is 0.6.

Needs ratings (registry `needs=("rating",)`): L_E is undefined without them, so the app greys it
out on implicit data (use NeuMF there: EINMF with η = 1 is NeuMF with shared embeddings).
Paper settings: lr 0.0001, batch 1024, 4–6 negatives, dropout 0.2.
ml-100k, leave-one-out, 100 candidates, emb_dim 32, layers 64,32,16, dropout 0.2, lr 0.001, batch
256, 4 negatives, 10 epochs, seed 0 (still improving at epoch 10): test HR@10 / NDCG@10 0.647 /
0.380 with η = 0.6 and 0.641 / 0.382 with η = 1 — on this budget the explicit term is no clear gain.
Bench (emb 64, layers 128,64, η 0.6, dropout 0.2, random validation item, 3 seeds): lr 0.0005 with
decay 1e-6 gives valid NDCG@10 0.554 and test HR@10 / NDCG@10 0.645 / 0.382; lr 0.001 without decay
0.544 and 0.639 / 0.373. NeuMF at emb 64 gets 0.658 / 0.386 on the same splits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recviz.data.split import Split
from recviz.errors import ModelError
from recviz.models.dmf import parse_widths, rating_sampler
from recviz.models.ncf import gaussian_embedding, output_layer, relu_tower
from recviz.models.torch_base import TorchRecommender
from recviz.train.losses import log_loss


class EINMFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, widths: tuple[int, ...], dropout: float):
        super().__init__()
        self.user, self.item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)  # implicit
        self.user_explicit = gaussian_embedding(n_users, dim)
        self.item_explicit = gaussian_embedding(n_items, dim)
        self.tower = relu_tower((2 * dim,) + widths, dropout)
        self.out = output_layer(dim + widths[-1])

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        p = self.user(users) + self.user_explicit(users)  # P_u = p_u^I + p_u^E
        q = self.item(items) + self.item_explicit(items)
        return self.out(torch.cat([p * q, self.tower(torch.cat([p, q], dim=-1))], dim=-1)).squeeze(-1)


class EINMF(TorchRecommender):
    """GMF ⊕ MLP over added explicit/implicit embeddings, trained on η·L_I + (1−η)·L_E."""

    name = "einmf"

    def __init__(self, emb_dim: int = 32, layers: str = "64,32,16", eta: float = 0.6, dropout: float = 0.0,
                 **train_options):
        super().__init__(**train_options)
        if emb_dim < 1:
            raise ModelError(f"emb_dim must be ≥ 1, not {emb_dim}")
        if not 0.0 <= eta <= 1.0:
            raise ModelError(f"eta must be in [0, 1], not {eta}",
                             fix="1 = implicit loss only, 0 = explicit loss only; the paper's best is 0.6")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), not {dropout}", fix="the paper uses 0.2")
        self.emb_dim, self.layers = emb_dim, parse_widths(layers)
        self.eta, self.dropout = float(eta), float(dropout)

    def build_module(self, n_users: int, n_items: int) -> EINMFNet:
        return EINMFNet(n_users, n_items, self.emb_dim, self.layers, self.dropout)

    def epoch_sampler(self, split: Split):
        return rating_sampler(split, self.options.neg_ratio, "EINMF")

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """eq. 16 as one log loss against the soft label η·ir + (1−η)·r/Max(R) (see above)."""
        soft = self.eta * batch["label"] + (1.0 - self.eta) * batch["target"]
        return log_loss(self.module(batch["user"], batch["item"]), soft)

    def item_embeddings(self) -> np.ndarray:
        """Q_i = q_i^E + q_i^I, the item vector both branches read."""
        m = self._module()
        return (m.item.weight + m.item_explicit.weight).detach().cpu().numpy()
