"""DMF — Deep Matrix Factorization (Xue et al. 2017, IJCAI).

Input (eq. 2): Y_ij = R_ij when user i rated item j in *train*, 0 otherwise — train's rating
matrix, built and stored as `recviz.models.rating_matrix` describes (no held-out rating can reach it).

Towers (eq. 5–7): user i is the row Y_i*, item j the column Y_*j; each goes through its own tower.
`tower_layers` = "256,64" lists each tower's output widths (two layers per tower: the paper's DMF-2):
    l1 = Y_i* · W_U1                 [n_items → 256], linear, no bias (eq. 5: l1 = W1·x)
    p_i = ReLU(W_U2 · l1 + b_U2)     [256 → 64]       (eq. 5–6; more widths, more ReLU layers)
and likewise q_j with W_V1 [n_users → 256]. Eq. 7 also writes an f around Y·W_U1; we follow
eq. 5, which makes the first layer a plain projection. It is never a dense product:
Y_i*·W_U1 = Σ_j R_ij · W_U1[j], a rating-weighted sum of embedding rows — `nn.EmbeddingBag(mode="sum", per_sample_weights=ratings)` over the CSR row.
With one width ("64") a tower is that linear projection alone (DMF-1).

Prediction (eq. 8, 13): Ŷ_ij = cos(p_i, q_j), clipped to Ŷᵒ = max(µ, Ŷ), µ = 1e-6. Scores (for
ranking) are the raw cosine: the clip is monotone, it only turns every score below µ into a tie.

Loss (eq. 11–12) on the clipped cosine itself, not on logits: BCE(Ŷᵒ, t) with 1 − Ŷᵒ clamped to
≥ µ. `loss="nce"` (the paper's normalised cross entropy): t = R_ij / max(R) for positives,
max(R) the largest *train* rating; `"ce"`: t = 1. Sampled negatives have t = 0 in both. Negatives
are re-drawn every epoch, `neg_ratio` per positive. As in the paper (Algorithm 1, line 10), a
positive's own rating is part of its user row and item column.

Paper settings: 7 negatives, Adam lr 0.0001, batch 256, 2 layers with 64 factors on top, every
weight N(0, 0.01²) (§4, "Detailed Implementation"; used here too, biases 0). Ratings must be
positive: 0 means "unknown" in Y, and t must lie in [0, 1].
The defaults and the `paper` preset are declared in `recviz.models.dmf_spec`.

Speed: a tower reads whole rating rows (~106 per user, ~59 per item on ml-100k), so `forward` runs
each distinct user and item once per batch (exact), and samples are shuffled in blocks of a positive
with its negatives (`shuffle_block`), so a batch of 256 holds 32 users. What this bought, and every
variant tried against the paper's numbers, is in docs/experiments.md.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recviz.data.split import Split
from recviz.data.training_samples import EpochDraw
from recviz.models import dmf_spec
from recviz.models.rating_matrix import RatingMatrixInput, rating_sampler, register_inputs, row_bags
from recviz.models.torch_base import TorchRecommender
from recviz.options import widths

MU = 1e-6  # eq. 13


# ---- the network -------------------------------------------------------------------------------
class Tower(nn.Module):
    """eq. 5/7: a rating-weighted sum of W1's rows, then Linear + ReLU per further width."""

    def __init__(self, n_inputs: int, widths: tuple[int, ...]):
        super().__init__()
        self.first = nn.EmbeddingBag(n_inputs, widths[0], mode="sum")
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(w_in, w_out), nn.ReLU()]
        self.rest = nn.Sequential(*layers)
        for p in self.parameters():  # §4: every weight N(0, 0.01²); biases 0
            nn.init.normal_(p, 0.0, 0.01) if p.dim() > 1 else nn.init.zeros_(p)

    def forward(self, ids: torch.Tensor, weights: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(ids, offsets, per_sample_weights=weights))


class DMFNet(nn.Module):
    def __init__(self, n_users: int, n_items: int, widths: tuple[int, ...], inputs: dict[str, np.ndarray]):
        super().__init__()
        register_inputs(self, inputs)
        self.user_tower = Tower(n_items, widths)  # reads a user's row: ratings over items
        self.item_tower = Tower(n_users, widths)

    def _side(self, side: str, rows: torch.Tensor) -> torch.Tensor:
        """Unit-length tower outputs of these users/items (zero vectors stay zero)."""
        ids, ratings, offsets, _ = row_bags(self, side, rows)
        tower = self.user_tower if side == "user" else self.item_tower
        return F.normalize(tower(ids, ratings, offsets), dim=-1)

    def users(self, rows: torch.Tensor) -> torch.Tensor:
        return self._side("user", rows)

    def items(self, rows: torch.Tensor) -> torch.Tensor:
        return self._side("item", rows)

    @staticmethod
    def head(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """cos(p, q) of unit vectors (eq. 8)."""
        return (p * q).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Raw cosine (eq. 8) of each (user, item) pair. Each distinct user and item goes through
        its tower once: a tower reads a whole rating row, so a user repeated in the batch (a
        positive and its negatives) would otherwise be summed over again and again."""
        u, u_at = torch.unique(users, return_inverse=True)
        i, i_at = torch.unique(items, return_inverse=True)
        return self.head(self.users(u)[u_at], self.items(i)[i_at])


class DMF(RatingMatrixInput, TorchRecommender):
    """Deep Matrix Factorization: two towers over train's rating matrix, cosine, (normalised)
    cross entropy — see the module docstring for the equations and the choices made."""

    spec = dmf_spec.DMF

    def __init__(self, **options):
        super().__init__(**options)
        self.layers, self.loss = widths(self.opts.tower_layers), self.opts.loss

    def build_module(self, n_users: int, n_items: int) -> DMFNet:
        # train's Y from fit or a saved state (`RatingMatrixInput`); before either, an empty one
        return DMFNet(n_users, n_items, self.layers, self.inputs_for(n_users, n_items))

    @property
    def shuffle_block(self) -> int:
        """Samples move through the epoch in blocks of a positive and its negatives (see
        `epoch_sampler`): a batch of 256 then holds 32 users instead of ~220, so the user tower —
        the costlier one, users having rated more items than items have raters — runs 8× less."""
        return 1 + self.opts.neg_ratio

    def epoch_sampler(self, split: Split) -> EpochDraw:
        """`rating_sampler`'s samples, re-laid as [positive, its negatives] blocks (a unit each)."""
        draw, ratio = rating_sampler(split, self.opts.neg_ratio, "DMF"), self.opts.neg_ratio

        def blocks(rng: np.random.Generator, units: np.ndarray | None) -> dict[str, np.ndarray]:
            sample = draw(rng, units)
            n_pos = len(sample["user"]) // (1 + ratio)  # positives first, then ratio negatives each
            at = np.concatenate([np.arange(n_pos)[:, None],
                                 n_pos + np.arange(n_pos)[:, None] * ratio + np.arange(ratio)], axis=1).ravel()
            return {k: v[at] for k, v in sample.items()}
        return EpochDraw(draw.units, draw.rows_per_unit, blocks)

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """eq. 11/12 on Ŷᵒ = max(µ, cos) (eq. 13): −[t·log Ŷᵒ + (1−t)·log(1−Ŷᵒ)], batch mean."""
        y = self.module(batch["user"], batch["item"]).clamp(min=MU)  # Ŷᵒ
        t = batch["target"] if self.loss == "nce" else batch["label"]
        return -(t * torch.log(y) + (1 - t) * torch.log((1 - y).clamp(min=MU))).mean()
