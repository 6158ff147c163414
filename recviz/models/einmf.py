"""EINMF — neural matrix factorisation integrating explicit and implicit feedback (the EINMF paper
in Computational Intelligence and Neuroscience, §3).

Embeddings (§3.2, Figure 1): the model's inputs are the user's row of the explicit rating matrix R
(formula 7) and the user's one-hot id in the implicit matrix IR (formula 8); likewise the item's
column of R and its id. Each input has its own embedding, `emb_dim` wide, N(0, 0.01²) (§4.3.1):
- implicit, p_u^I / q_i^I: an id lookup, as in NCF;
- explicit, p_u^E = Σ_j (r_uj / Max(R)) · E_I[j] / √|R_u|: the rating-weighted sum of item
  vectors over the user's train ratings (and q_i^E over the item's raters, with user vectors E_U),
  an `nn.EmbeddingBag` over train's rating matrix (`recviz.models.rating_matrix`: built from
  train only, so no held-out rating is ever an input). The 1/√|R_u| scale is our choice (the
  paper gives none): it is SVD++'s, and keeps a heavy user's vector the size of a light user's.
They are *added*, P_u = p_u^E + p_u^I, Q_i = q_i^E + q_i^I (Figure 1's "+"; "the explicit-implicit
feedback vectors are added to complement each other").
Why rows and not a second id table: two id tables that are only ever added act as one table — the
model would be NeuMF with shared embeddings and a soft label. Reading R's rows makes the explicit
part what the paper describes, and it helped (below).

Hybrid layer (eq. 9–11): a GMF branch φ_dot = P_u ⊙ Q_i and an MLP branch over [P_u; Q_i]
(2·emb_dim wide) with one Linear + ReLU (+ dropout) per width of `hidden_layers`, which lists the
*hidden* widths after the input, unlike NCF's MLP whose first width is the input (EINMF's input
width is fixed by emb_dim). ŷ = σ(hᵀ[φ_dot; φ_MLP]); the module returns the logit and σ lives in the
loss. Hidden layers Glorot-uniform and h LeCun-uniform as in NCF's code (EINMF builds on NeuMF;
a tower of N(0, 0.01²) layers would start with a vanishing MLP branch). Dropout (the paper's
"discard rate", 0.2) follows every hidden ReLU.

Loss (eq. 14–16): L = η·L_I + (1−η)·L_E, both cross entropies on the same ŷ:
- L_I (eq. 15): target ir_ui = 1 for train pairs, 0 for sampled negatives;
- L_E (eq. 14): target r_ui / Max(R), Max(R) the largest *train* rating (a pair rated twice:
  its latest rating), and 0 for sampled negatives (they have no rating).
Cross entropy is linear in its target, so L = BCE(ŷ, η·ir + (1−η)·r/Max(R)) — one log loss against
a soft label. At the endpoints this is exact in floating point (1·x + 0·y = x for finite y):
η = 1 is the implicit-only loss, η = 0 the explicit-only loss. The paper's best η is 0.6.

Needs ratings (registry `needs=("rating",)`): both the explicit input and L_E are undefined
without them, so the app greys it out on implicit data (use NeuMF there).
The defaults and the `paper` preset (lr 0.0001, batch 1024, dropout 0.2, η 0.6) are declared in
`recviz.models.einmf_spec`; measurements are in docs/experiments.md.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recviz.data.split import Split
from recviz.models import einmf_spec
from recviz.models.ncf import gaussian_embedding, output_layer, relu_tower
from recviz.models.rating_matrix import RatingMatrixInput, rating_sampler, register_inputs, row_bags
from recviz.models.torch_base import TorchRecommender
from recviz.options import widths
from recviz.models.losses import log_loss


def rating_bag(n_rated: int, dim: int) -> nn.EmbeddingBag:
    bag = nn.EmbeddingBag(n_rated, dim, mode="sum")
    nn.init.normal_(bag.weight, 0.0, 0.01)
    return bag


class EINMFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, widths: tuple[int, ...], dropout: float,
                 inputs: dict[str, np.ndarray]):
        super().__init__()
        register_inputs(self, inputs)  # train's R, by user and by item
        self.max_rating = float(inputs["user_val"].max()) if len(inputs["user_val"]) else 1.0
        self.user, self.item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)  # implicit
        self.user_explicit = rating_bag(n_items, dim)  # a user's row of R weighs item vectors
        self.item_explicit = rating_bag(n_users, dim)  # an item's column weighs user vectors
        self.tower = relu_tower((2 * dim,) + widths, dropout)
        self.out = output_layer(dim + widths[-1])

    def _explicit(self, side: str, rows: torch.Tensor) -> torch.Tensor:
        """p^E (side="user") or q^E of these rows: Σ (r / Max R) · vector, over √(ratings in the row)."""
        ids, ratings, offsets, length = row_bags(self, side, rows)
        scale = length.clamp(min=1).to(ratings.dtype).rsqrt() / self.max_rating
        weights = ratings * torch.repeat_interleave(scale, length, output_size=len(ids))
        bag = self.user_explicit if side == "user" else self.item_explicit
        return bag(ids, offsets, per_sample_weights=weights)

    def users(self, rows: torch.Tensor) -> torch.Tensor:
        """P_u = p_u^I + p_u^E."""
        return self.user(rows) + self._explicit("user", rows)

    def items(self, rows: torch.Tensor) -> torch.Tensor:
        """Q_i = q_i^I + q_i^E."""
        return self.item(rows) + self._explicit("item", rows)

    def head(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """The hybrid layer and prediction (eq. 9–11), as a logit."""
        return self.out(torch.cat([p * q, self.tower(torch.cat([p, q], dim=-1))], dim=-1)).squeeze(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Each distinct user and item is summed over its ratings once per call (a positive and its
        negatives share a user; popular items recur)."""
        u, u_at = torch.unique(users, return_inverse=True)
        i, i_at = torch.unique(items, return_inverse=True)
        return self.head(self.users(u)[u_at], self.items(i)[i_at])


class EINMF(RatingMatrixInput, TorchRecommender):
    """GMF ⊕ MLP over added explicit/implicit embeddings, trained on η·L_I + (1−η)·L_E."""

    spec = einmf_spec.EINMF

    def __init__(self, **options):
        super().__init__(**options)
        o = self.opts
        self.emb_dim, self.layers, self.eta, self.dropout = o.emb_dim, widths(o.hidden_layers), o.eta, o.dropout

    def build_module(self, n_users: int, n_items: int) -> EINMFNet:
        # train's R from fit or a saved state (`RatingMatrixInput`); before either, an empty one
        return EINMFNet(n_users, n_items, self.emb_dim, self.layers, self.dropout,
                        self.inputs_for(n_users, n_items))

    def epoch_sampler(self, split: Split):
        return rating_sampler(split, self.opts.neg_ratio, "EINMF")

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """eq. 16 as one log loss against the soft label η·ir + (1−η)·r/Max(R) (see above)."""
        soft = self.eta * batch["label"] + (1.0 - self.eta) * batch["target"]
        return log_loss(self.module(batch["user"], batch["item"]), soft)
