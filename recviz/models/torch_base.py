"""What every neural model has in common: options from its declaration, a torch module built when
the data's size is known, batched scoring on the device, and weights as plain arrays.

A subclass sets `spec` (its declaration), `loss_kind` ("pointwise" log loss or "pairwise" BPR) and
implements `build_module(n_users, n_items)` returning an `nn.Module` with `forward(users, items) ->
logits`. Models with other samples or losses (DMF's rating labels, EINMF's hybrid loss,
multi-behaviour negatives) override `epoch_sampler`, `batch_loss` and/or `shuffle_block`; the
training loop (`recviz.training`) stays the same and drives every one through `plan`.

Scoring has two paths. By default every (user, item) pair goes through `forward`. A two-sided
model (`two_stage = True`: DMF, EINMF, any model whose user and item vectors are costly and shared
across pairs) implements the public hook `user_vectors`, `item_vectors` and `pair_scores`: each
distinct user's and item's vector is computed once per scoring call and only the head runs per pair.
"""

from __future__ import annotations

import numpy as np
import torch

from recviz.data.split import Split
from recviz.data.training_samples import EpochDraw, pair_draw, train_positives
from recviz.errors import ModelError
from recviz.models.base import GradientPhase, Recommender, WeightShape
from recviz.models.device import flush_denormals, pick_device, seed_everything, set_threads
from recviz.models.losses import bpr_loss, log_loss
from recviz.models.spec import SPARSE_ROWS_FROM, Phase

# (user, item) pairs scored per forward pass: big enough to keep a GPU busy, small enough that a
# 256-wide MLP input stays ~100 MB.
SCORE_PAIRS = 1 << 17
# Distinct users or items whose vectors one step of a two-stage model computes.
VECTOR_ROWS = 4096
LOSS_KINDS = ("pointwise", "pairwise")
ROW_TABLES = (torch.nn.Embedding, torch.nn.EmbeddingBag)


def mark_sparse_rows(module: torch.nn.Module, mode: str) -> tuple[str, ...]:
    """Set torch's own `sparse` flag of every embedding table (`nn.Embedding`, `nn.EmbeddingBag`,
    DMF's and EINMF's rating-row bags included) as `mode` (the `sparse_rows` option) says: "on" every
    table, "off" none, "auto" the tables of at least SPARSE_ROWS_FROM rows. A sparse table's
    gradient holds only the rows a batch read, and the training loop gives such tables the lazy
    row-wise optimiser (`recviz.training.optim`). Returns the names of the tables made sparse."""
    names = []
    for name, table in module.named_modules():
        if isinstance(table, ROW_TABLES):
            table.sparse = mode == "on" or (mode == "auto" and table.num_embeddings >= SPARSE_ROWS_FROM)
            if table.sparse:
                names.append(name)
    return tuple(names)


class TorchRecommender(Recommender):
    loss_kind = "pointwise"
    two_stage = False  # score through user_vectors / item_vectors / pair_scores (see the module doc)
    shuffle_block = 1  # samples that move together when an epoch is shuffled (see GradientPhase)

    def __init__(self, **options):
        super().__init__(**options)
        if self.loss_kind not in LOSS_KINDS:
            raise ModelError(f"{type(self).__name__}.loss_kind must be one of {LOSS_KINDS}")
        self.device: torch.device | None = None
        self.module: torch.nn.Module | None = None
        self.n_users = self.n_items = 0
        self.best_epoch: int | None = None
        self.sparse_tables: tuple[str, ...] = ()  # embedding tables trained row-sparse (`mark_sparse_rows`)
        self.precision: str | None = None  # the arithmetic training uses, once prepared (see prepare)

    # ---- to implement -------------------------------------------------------------------------
    def build_module(self, n_users: int, n_items: int) -> torch.nn.Module:
        raise NotImplementedError

    # ---- training -----------------------------------------------------------------------------
    def plan(self, phase: Phase, split: Split, optimizer: str = "adam") -> GradientPhase:
        """Fresh weights from the seed, then what the loop needs to train them."""
        self.prepare(split.data.n_users, split.data.n_items)
        return self.gradient_phase(split, optimizer)

    def gradient_phase(self, split: Split, optimizer: str = "adam") -> GradientPhase:
        """This model's current module trained with its own options (NeuMF continues with SGD)."""
        o = self.opts
        return GradientPhase(self, self.module, self.device, self.epoch_sampler(split), self.batch_loss,
                             lr=o.lr, batch_size=o.batch_size, weight_decay=o.l2, seed=self.seed,
                             optimizer=optimizer, shuffle_block=self.shuffle_block, precision=self.precision,
                             batch_grads=self.batch_grads())

    def batch_grads(self):
        """A hand-written loss-and-gradient step for this model's current module (`GradientPhase.
        batch_grads`), or None to train through autograd (the default: only GMF, MLP and NeuMF have one)."""
        return None

    def prepare(self, n_users: int, n_items: int) -> None:
        """Pick the device, set threads, and build freshly initialised weights from the seed. Mixed
        precision (the `precision` option) is for CUDA: elsewhere the model trains in fp32, and
        `self.precision` says what it uses (runs record it)."""
        self.device = pick_device(self.device_name)
        asked = getattr(self.opts, "precision", "fp32")
        self.precision = asked if self.device.type == "cuda" else "fp32"
        set_threads(self.threads)
        flush_denormals(self.device)
        seed_everything(self.seed)
        self.n_users, self.n_items = n_users, n_items
        self.module = self.build_module(n_users, n_items).to(self.device)
        self.sparse_tables = mark_sparse_rows(self.module, getattr(self.opts, "sparse_rows", "off"))

    def weight_shapes(self, n_users: int, n_items: int, behaviors: tuple[str, ...] = ()) -> list[WeightShape]:
        """Every weight of this model's module for data of this size, built on torch's meta device
        (shapes only, nothing allocated), the embedding tables marked as `sparse_rows` would mark
        them."""
        with torch.device("meta"):
            module = self.build_module(n_users, n_items)
        sparse = {f"{name}.weight" for name in mark_sparse_rows(module, getattr(self.opts, "sparse_rows", "off"))}
        return [WeightShape(name, tuple(p.shape), p.element_size(), row_sparse=name in sparse)
                for name, p in module.named_parameters()]

    def epoch_sampler(self, split: Split) -> EpochDraw:
        """Prepared once per phase: the `EpochDraw` giving each epoch's sample arrays."""
        _, _, seen = train_positives(split)
        pairwise, ratio = self.loss_kind == "pairwise", getattr(self.opts, "neg_ratio", 1)
        return pair_draw(seen, neg_ratio=ratio, pairwise=pairwise)

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.loss_kind == "pairwise":
            # positives and negatives in one forward pass: half the per-batch overhead
            b = len(batch["user"])
            logits = self.module(batch["user"].repeat(2), torch.cat([batch["item"], batch["neg"]]))
            return bpr_loss(logits[:b], logits[b:])
        return log_loss(self.module(batch["user"], batch["item"]), batch["label"])

    # ---- two-stage scoring hook (two_stage = True) ----------------------------------------------
    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """[len(users), d]: each user's vector, as `pair_scores` reads it."""
        raise NotImplementedError

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """[len(items), d]: each item's vector, as `pair_scores` reads it."""
        raise NotImplementedError

    def pair_scores(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Logits of pairs of vectors: p, q [N, d] → [N]."""
        raise NotImplementedError

    # ---- scoring ------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items)
        b, m = items.shape
        if b == 0 or m == 0:
            return np.zeros((b, m), np.float32)
        u = self._tensor(np.asarray(users))[:, None].expand(b, m)
        return self._score_rows(u, self._tensor(items))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        self._module()  # fail clearly before n_items is read
        users = np.asarray(users)
        b, m = len(users), self.n_items
        if b == 0:
            return np.zeros((0, m), np.float32)
        u = self._tensor(users)[:, None].expand(b, m)
        i = torch.arange(m, device=self.device)[None, :].expand(b, m)
        return self._score_rows(u, i)

    def _score_rows(self, u: torch.Tensor, i: torch.Tensor) -> np.ndarray:
        """Logits of [B, M] pairs whose row b is all user u[b, 0], in eval mode, as float32 numpy."""
        module = self._module()
        was_training = module.training
        module.eval()
        with torch.no_grad():
            out = self._two_stage_rows(u[:, 0], i) if self.two_stage else self._forward_rows(u, i)
        module.train(was_training)
        return out.float().cpu().numpy()

    def _forward_rows(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Every pair through `forward`, a block of rows per pass."""
        rows = max(1, SCORE_PAIRS // u.shape[1])
        return torch.cat([self.module(u[s:s + rows].reshape(-1), i[s:s + rows].reshape(-1)).view(-1, u.shape[1])
                          for s in range(0, u.shape[0], rows)])

    def _two_stage_rows(self, users: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Each distinct user's and item's vector once, then `pair_scores` per pair."""
        p = self._vectors(self.user_vectors, users)
        cols, at = torch.unique(i, return_inverse=True)
        q = self._vectors(self.item_vectors, cols)
        rows, m = max(1, SCORE_PAIRS // i.shape[1]), i.shape[1]
        return torch.cat([self.pair_scores(p[s:s + rows, None].expand(-1, m, -1).reshape(-1, p.shape[1]),
                                           q[at[s:s + rows].reshape(-1)]).view(-1, m)
                          for s in range(0, len(p), rows)])

    @staticmethod
    def _vectors(side, ids: torch.Tensor) -> torch.Tensor:
        return torch.cat([side(ids[s:s + VECTOR_ROWS]) for s in range(0, len(ids), VECTOR_ROWS)])

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a, dtype=np.int64), device=self.device)

    def _module(self) -> torch.nn.Module:
        if self.module is None:
            raise ModelError(f"{self.name} has no weights yet", fix="train it (fit) or load a saved state")
        return self.module

    def item_embeddings(self) -> np.ndarray:
        """Every item embedding table side by side ([n_items, Σ dims]; NeuMF: GMF's and MLP's), for
        the embedding map. Tables are the modules' `item` embeddings, by convention."""
        tables = [m.item.weight for m in self._module().modules()
                  if isinstance(getattr(m, "item", None), torch.nn.Embedding)]
        return torch.cat(tables, dim=1).detach().cpu().numpy()

    # ---- state --------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self._module().state_dict().items()}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        """Rebuild the module with this model's options and load the arrays (on this machine's
        device: weights saved on a GPU load on a CPU and back)."""
        self.prepare(n_users, n_items)
        want = set(self.module.state_dict())
        if set(state) != want:
            raise ModelError(f"saved weights do not fit {self.name} with these options "
                             f"(missing {sorted(want - set(state))}, unexpected {sorted(set(state) - want)})",
                             fix="load the state with the options it was trained with")
        try:
            self.module.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in state.items()})
        except RuntimeError as err:  # shape mismatch: other emb_dim/layers or another dataset
            raise ModelError(f"saved weights do not fit {self.name}: {err}".splitlines()[0],
                             fix="load the state with the options and data it was trained with") from None
        self.module.eval()
