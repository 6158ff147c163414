"""EINMF — neural matrix factorisation integrating explicit and implicit feedback (the EINMF paper
in Computational Intelligence and Neuroscience, §3; text in shared/papers/einmf.txt).

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

Needs ratings (registry `needs=("rating",)`): both the explicit input and L_E are undefined
without them, so the app greys it out on implicit data (use NeuMF there).
Paper settings: lr 0.0001, batch 1024, 4–6 negatives, dropout 0.2.
Measured (ml-100k, leave-one-out, 100 candidates, emb 64, layers 128,64, η 0.6, dropout 0.2, lr
0.0005, decay 1e-6, random validation item; test HR@10 / NDCG@10 at the best validation epoch),
seeds 0, 1, 2: explicit embeddings as a second id table 0.642 / 0.377; from rating rows
0.666 / 0.398 (`recviz bench --models einmf`). NeuMF on the same splits: 0.663 / 0.388. The rows
cost time: 13.7 s per epoch at batch 256 against 4.0 s with two id tables (each batch sums ~220
users' ~106 ratings and the items' raters).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recviz.data.split import Split
from recviz.errors import ModelError
from recviz.models.ncf import gaussian_embedding, output_layer, parse_widths, relu_tower
from recviz.models.rating_matrix import RatingMatrixInput, rating_sampler, register_inputs, row_bags
from recviz.models.torch_base import SCORE_PAIRS, TorchRecommender
from recviz.train.losses import log_loss

BAG_ROWS = 4096  # users (or items) whose explicit vectors are summed at once when scoring


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
        # train's R from fit or a saved state (`RatingMatrixInput`); before either, an empty one
        return EINMFNet(n_users, n_items, self.emb_dim, self.layers, self.dropout,
                        self.inputs_for(n_users, n_items))

    def epoch_sampler(self, split: Split):
        return rating_sampler(split, self.options.neg_ratio, "EINMF")

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """eq. 16 as one log loss against the soft label η·ir + (1−η)·r/Max(R) (see above)."""
        soft = self.eta * batch["label"] + (1.0 - self.eta) * batch["target"]
        return log_loss(self.module(batch["user"], batch["item"]), soft)

    # ---- scoring: P and Q once per user / item, then the hybrid layer per pair ----------------
    def _vectors(self, side: str, ids: torch.Tensor) -> torch.Tensor:
        module = self._module()
        part = module.users if side == "user" else module.items
        return torch.cat([part(ids[s:s + BAG_ROWS]) for s in range(0, len(ids), BAG_ROWS)])

    def _forward_rows(self, u: torch.Tensor, i: torch.Tensor) -> np.ndarray:
        """Logits of [B, M] pairs whose row b is all user u[b, 0] (how `score`/`score_all` call it)."""
        module = self._module()
        was_training = module.training
        module.eval()
        with torch.no_grad():
            p = self._vectors("user", u[:, 0])
            cols, at = torch.unique(i, return_inverse=True)
            q = self._vectors("item", cols)
            rows, m = max(1, SCORE_PAIRS // i.shape[1]), i.shape[1]
            out = torch.cat([module.head(p[s:s + rows, None].expand(-1, m, -1).reshape(-1, p.shape[1]),
                                         q[at[s:s + rows].reshape(-1)]).view(-1, m)
                             for s in range(0, len(p), rows)])
        module.train(was_training)
        return out.float().cpu().numpy()

    def item_embeddings(self) -> np.ndarray:
        """Q_i = q_i^I + q_i^E, the item vector both branches read."""
        with torch.no_grad():
            return self._vectors("item", torch.arange(self.n_items, device=self.device)).cpu().numpy()
