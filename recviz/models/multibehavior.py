"""Multi-behaviour NeuMF (`mbnmf`) — "Neural collaborative filtering with multiple implicit
feedback" (the multi-implicit NMF paper): one *target*
behaviour (e.g. buy) is predicted, the others (click, cart, fav, …) are *supportive*.

Network (paper §3.2–3.4, Fig. 1–2):
- MF part: p_u^MF ⊙ q_i^MF (eq. 5; width emb_dim), as NeuMF's GMF body.
- M-MLP part: user and item MLP embeddings p_u^MLP, q_i^MLP (eq. 6: one pair, shared by the
  branches) feed one ReLU tower per behaviour — the target's first, then one per supportive
  behaviour found in train (eq. 2–3; `mlp_layers` as in NCF: the concatenated input width, then each
  hidden width), each ending in a one-unit layer: y_t, the branch's own prediction (logit).
- Fusion: one dense layer over [MF; y_Target; y_A; y_B; …] gives the target logit (eq. 4 and 7;
  σ lives in the log loss). Scores are this logit.

Training (log loss, Adam, the shared loop; paper §3.3, "asynchronous" branch updates):
- Target stream: every distinct target pair of train (label 1) plus `neg_ratio` negatives each
  (label 0), loss on the fused logit. A supportive branch's output enters this loss for every pair
  but passes gradient back only on pairs that have that behaviour in train (`torch.where` with a
  detached copy): it is updated only on pairs that have its behaviour.
- Supportive streams (our reading of "each branch corresponds to a type of implicit feedback and
  learns the interactions under this feedback"): supportive branch b's own logit y_b is trained on
  b's distinct pairs (label 1) against `neg_ratio` uniform items without b (label 0). This is how
  supportive data reach the shared MLP embeddings and give the fused layer a calibrated "would
  click/cart/fav" score; without it a pair that was only clicked would never be a positive
  anywhere and clicks would add nothing.
- Negatives for the target stream (`neg_source`): "uniform" — items with no target pair in the
  user's train, exactly the negatives NeuMF gets on target data; "supportive" (paper §3.1) — items
  the user touched only through supportive behaviours in train, uniformly among them, falling back
  to uniform for users with none. Neither ever returns a target positive of the user.

Target: `split.target` (`--target`, which also picks the held-out items). With behaviours but no
target, fit raises ModelError suggesting `--target buy` (or the last behaviour when there is no
"buy") instead of silently choosing: the split was already drawn over all behaviours and the
numbers would not be comparable with the single-behaviour models.
Single-behaviour models on the same split learn from target rows only (`recviz.data.split.target_train`).

The defaults are declared in `recviz.models.multibehavior_spec`; the measurements behind them are
in docs/experiments.md.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recviz.data.interactions import Interactions
from recviz.data.sampling import SeenItems, sample_negatives
from recviz.data.split import Split
from recviz.errors import ModelError
from recviz.data.training_samples import EpochDraw, train_positives
from recviz.models import multibehavior_spec
from recviz.models.ncf import GMFBody, gaussian_embedding, output_layer, relu_tower
from recviz.models.torch_base import TorchRecommender
from recviz.options import widths
from recviz.models.losses import log_loss
DEFAULT_TARGET = "buy"


def suggested_target(behaviors: tuple[str, ...]) -> str:
    """"buy" when the data has it, else the last behaviour listed (usually the deepest one)."""
    return DEFAULT_TARGET if DEFAULT_TARGET in behaviors else behaviors[-1]


def behavior_pairs(train: Interactions, code: int) -> SeenItems:
    """The distinct (user, item) pairs of one behaviour in train, as an index."""
    rows = train.behavior == code
    return SeenItems(train.user[rows], train.item[rows], train.n_users, train.n_items)


def supportive_only(train: Interactions, target_code: int) -> SeenItems:
    """Per user, the items touched in train through supportive behaviours but never the target."""
    target = behavior_pairs(train, target_code)
    rows = train.behavior != target_code
    rows[rows] = ~target.contains(train.user[rows], train.item[rows])
    return SeenItems(train.user[rows], train.item[rows], train.n_users, train.n_items)


def supportive_negatives(users: np.ndarray, only: SeenItems, target_seen: SeenItems,
                         rng: np.random.Generator) -> np.ndarray:
    """One negative per entry of `users`: uniformly among the user's supportive-only items, or —
    for users without any — uniformly among items with no target pair (vectorised, no loop)."""
    out = sample_negatives(users, target_seen, rng)
    counts = only.count(users)
    has = counts > 0
    pick = only.indptr[users[has]] + (rng.random(int(has.sum())) * counts[has]).astype(np.int64)
    out[has] = only.items[np.minimum(pick, only.indptr[users[has] + 1] - 1)]
    return out


class SharedEmbeddings(nn.Module):
    """p_u^MLP and q_i^MLP (eq. 6), shared by every branch."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.user, self.item = gaussian_embedding(n_users, dim), gaussian_embedding(n_items, dim)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.user(users), self.item(items)], dim=-1)


class MBNMFNet(nn.Module):
    """MF part + one MLP tower per behaviour (target first), fused by one dense layer."""

    def __init__(self, n_users: int, n_items: int, emb_dim: int, layers: tuple[int, ...],
                 branch_codes: tuple[int, ...]):
        super().__init__()
        self.gmf = GMFBody(n_users, n_items, emb_dim)
        self.mlp = SharedEmbeddings(n_users, n_items, layers[0] // 2)
        self.towers = nn.ModuleList(relu_tower(layers) for _ in branch_codes)
        self.heads = nn.ModuleList(output_layer(layers[-1]) for _ in branch_codes)  # y_L^{t}: one number
        self.out = output_layer(emb_dim + len(branch_codes))
        # the behaviour code of each branch: saved with the weights, so set_state rebuilds the shape
        self.register_buffer("branch_codes", torch.tensor(branch_codes, dtype=torch.int64))

    def forward(self, users: torch.Tensor, items: torch.Tensor, has: torch.Tensor | None = None,
                branches: bool = False):
        """The fused target logit. With `has` (bit k set = the pair has branch k's behaviour),
        supportive branch k passes gradient only where bit k is set; with `branches`, also
        returns each branch's output y_k ([B, T], branch 0 = target)."""
        x = self.mlp(users, items)
        ys = torch.cat([head(tower(x)) for tower, head in zip(self.towers, self.heads)], dim=-1)  # [B, T]
        feed = ys
        if has is not None and ys.shape[1] > 1:
            bits = (has[:, None] >> torch.arange(ys.shape[1], device=has.device)) & 1
            bits[:, 0] = 1  # the target branch learns from every target-stream pair
            feed = torch.where(bits.bool(), ys, ys.detach())
        fused = self.out(torch.cat([self.gmf(users, items), feed], dim=-1)).squeeze(-1)
        return (fused, ys) if branches else fused


class MultiBehaviorNeuMF(TorchRecommender):
    """Multi-behaviour NeuMF: the target behaviour learned with the help of supportive ones."""

    spec = multibehavior_spec.MBNMF
    loss_kind = "pointwise"

    def __init__(self, **options):
        super().__init__(**options)
        o = self.opts
        self.emb_dim, self.layers, self.neg_source = o.emb_dim, widths(o.mlp_layers), o.neg_source
        self.branch_codes: tuple[int, ...] = ()
        self.branch_names: tuple[str, ...] = ()

    # ---- shape ----------------------------------------------------------------------------------
    def _branches(self, split: Split) -> tuple[int, ...]:
        data = split.data
        if data.behavior is None or not data.behaviors:
            raise ModelError(f"mbnmf needs a behaviour column; {data.name or 'this dataset'} has none",
                             fix="choose a multi-behaviour dataset (e.g. synthetic-multi) or another model")
        if split.target is None:
            raise ModelError("mbnmf needs a target behaviour, and this split was made without one "
                             f"(behaviours: {list(data.behaviors)})",
                             fix=f"pass --target {suggested_target(data.behaviors)}")
        target = data.behavior_code(split.target)
        present = np.flatnonzero(np.bincount(data.behavior[split.train_rows], minlength=len(data.behaviors)))
        supportive = tuple(int(c) for c in present if c != target)
        self.branch_names = tuple(data.behaviors[c] for c in (target, *supportive))
        return (target, *supportive)

    def build_module(self, n_users: int, n_items: int) -> MBNMFNet:
        if not self.branch_codes:
            raise ModelError("mbnmf does not know its behaviours yet", fix="fit it on a split first")
        return MBNMFNet(n_users, n_items, self.emb_dim, self.layers, self.branch_codes)

    def weight_shapes(self, n_users: int, n_items: int, behaviors: tuple[str, ...] = ()):
        """As every torch model's, with one branch per behaviour of the data (before a split names
        them, the shape is all that matters)."""
        if self.branch_codes:
            return super().weight_shapes(n_users, n_items, behaviors)
        self.branch_codes = tuple(range(max(1, len(behaviors))))
        try:
            return super().weight_shapes(n_users, n_items, behaviors)
        finally:
            self.branch_codes = ()

    def begin(self, split: Split) -> None:
        self.branch_codes = self._branches(split)

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        if "branch_codes" not in state:
            raise ModelError("saved weights do not fit mbnmf (no branch_codes)",
                             fix="load a state saved by an mbnmf run")
        self.branch_codes = tuple(int(c) for c in np.asarray(state["branch_codes"]).ravel())
        super().set_state(state, n_users, n_items)

    # ---- samples --------------------------------------------------------------------------------
    def epoch_sampler(self, split: Split) -> EpochDraw:
        """Prepared once per fit: the target stream (stream 0) and one stream per supportive
        branch k, each with its `has` bits; the draw re-samples the negatives every epoch. Units are
        the streams' positives one after another (the target's first), each with its negatives."""
        train, ratio = split.train, self.opts.neg_ratio
        t_users, t_items, t_seen = train_positives(split)  # target pairs (target_train)
        seen = [t_seen] + [behavior_pairs(train, c) for c in self.branch_codes[1:]]
        only = supportive_only(train, self.branch_codes[0]) if self.neg_source == "supportive" else None
        del train  # a copy of every train column: not kept while training
        starts = np.cumsum([0] + [len(s.keys) for s in seen])

        def positives(k: int, units: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
            """Stream k's positive pairs: all, or those of `units` that are stream k's."""
            if k == 0 and units is None:
                return t_users, t_items
            s = seen[k]
            if units is None:
                return s.keys // s.n_items, s.items
            mine = units[(units >= starts[k]) & (units < starts[k + 1])] - starts[k]
            return (t_users[mine], t_items[mine]) if k == 0 else (s.keys[mine] // s.n_items, s.items[mine])

        def has_bits(users, items):
            bits = np.zeros(len(users), np.int64)
            for k, s in enumerate(seen):
                bits |= s.contains(users, items).astype(np.int64) << k
            return bits

        def draw(rng: np.random.Generator, units: np.ndarray | None) -> dict[str, np.ndarray]:
            parts = []
            for k, s in enumerate(seen):
                pos_u, pos_i = positives(k, units)
                neg_u = np.repeat(pos_u, ratio)
                if k == 0 and only is not None:
                    neg_i = supportive_negatives(neg_u, only, t_seen, rng)
                else:
                    neg_i = sample_negatives(neg_u, s, rng)
                users, items = np.concatenate([pos_u, neg_u]), np.concatenate([pos_i, neg_i])
                label = np.zeros(len(users), np.float32)
                label[:len(pos_u)] = 1.0
                parts.append({"user": users, "item": items, "label": label,
                              "stream": np.full(len(users), k, np.int64), "has": has_bits(users, items)})
            return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

        return EpochDraw(int(starts[-1]), 1 + ratio, draw)

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Log loss of each row on its stream's logit: the fused one (target) or branch k's head."""
        fused, ys = self.module(batch["user"], batch["item"], has=batch["has"], branches=True)
        stream = batch["stream"]
        own = ys.gather(1, stream[:, None]).squeeze(1)  # stream k > 0: branch k's own logit
        return log_loss(torch.where(stream == 0, fused, own), batch["label"])
