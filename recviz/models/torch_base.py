"""What every neural model has in common: options from its declaration, a torch module built when
the data's size is known, batched scoring on the device, and weights as plain arrays.

A subclass sets `name` (its declaration in the registry), `loss_kind` ("pointwise" log loss or
"pairwise" BPR) and implements `build_module(n_users, n_items)` returning an `nn.Module` with
`forward(users, items) -> logits`. Models with other samples or losses (DMF's rating labels, EINMF's
hybrid loss, multi-behaviour negatives) override `epoch_sampler`, `batch_loss` and/or
`shuffle_block`; the loop itself stays the same. Models that read rating rows score through
`TwoSidedScoring` (below), which computes each user's and item's vector once.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from recviz.data.split import Split
from recviz.data.training_samples import epoch_samples, train_positives
from recviz.errors import ModelError
from recviz.models.base import Recommender
from recviz.training import loop
from recviz.training.device import flush_denormals, pick_device, seed_everything, set_threads
from recviz.training.losses import bpr_loss, log_loss

# (user, item) pairs scored per forward pass: big enough to keep a GPU busy, small enough that a
# 256-wide MLP input stays ~100 MB.
SCORE_PAIRS = 1 << 17
LOSS_KINDS = ("pointwise", "pairwise")


class TorchRecommender(Recommender):
    name = "torch"
    iterative = True
    loss_kind = "pointwise"

    shuffle_block = 1  # samples that move together when an epoch is shuffled (see the loop)

    def __init__(self, **options):
        super().__init__(**options)
        if self.loss_kind not in LOSS_KINDS:
            raise ModelError(f"{type(self).__name__}.loss_kind must be one of {LOSS_KINDS}")
        o = self.opts
        self.train_options = loop.TrainOptions(lr=o.lr, batch_size=o.batch_size, epochs=o.epochs,
                                               patience=o.patience, weight_decay=o.l2,
                                               neg_ratio=getattr(o, "neg_ratio", 1), seed=self.seed)
        self.device: torch.device | None = None
        self.module: torch.nn.Module | None = None
        self.n_users = self.n_items = 0
        self.best_epoch: int | None = None

    # ---- to implement -------------------------------------------------------------------------
    def build_module(self, n_users: int, n_items: int) -> torch.nn.Module:
        raise NotImplementedError

    # ---- training -----------------------------------------------------------------------------
    def fit(self, split: Split, on_epoch=None, should_stop=None) -> list[dict]:
        self.prepare(split.data.n_users, split.data.n_items)
        return self.train_phase(split, on_epoch, should_stop)

    def prepare(self, n_users: int, n_items: int) -> None:
        """Pick the device, set threads, and build freshly initialised weights from the seed."""
        self.device = pick_device(self.device_name)
        set_threads(self.threads)
        flush_denormals(self.device)
        seed_everything(self.seed)
        self.n_users, self.n_items = n_users, n_items
        self.module = self.build_module(n_users, n_items).to(self.device)

    def train_phase(self, split: Split, on_epoch=None, should_stop=None, *, first_epoch: int = 1,
                    phase: str | None = None, **overrides) -> list[dict]:
        """Run the shared loop on the current weights; `overrides` replace training options
        (NeuMF continues with optimizer="sgd")."""
        opts = replace(self.train_options, **overrides) if overrides else self.train_options
        return loop.train(self, split, opts, on_epoch, should_stop, phase=phase or self.name,
                          first_epoch=first_epoch)

    def epoch_sampler(self, split: Split):
        """Prepared once per fit: returns `draw(rng)` → this epoch's sample arrays."""
        users, items, seen = train_positives(split)
        pairwise, ratio = self.loss_kind == "pairwise", self.train_options.neg_ratio
        return lambda rng: epoch_samples(users, items, seen, rng, neg_ratio=ratio, pairwise=pairwise)

    def batch_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.loss_kind == "pairwise":
            # positives and negatives in one forward pass: half the per-batch overhead
            b = len(batch["user"])
            logits = self.module(batch["user"].repeat(2), torch.cat([batch["item"], batch["neg"]]))
            return bpr_loss(logits[:b], logits[b:])
        return log_loss(self.module(batch["user"], batch["item"]), batch["label"])

    # ---- scoring ------------------------------------------------------------------------------
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        items = np.asarray(items)
        b, m = items.shape
        if b == 0 or m == 0:
            return np.zeros((b, m), np.float32)
        u = self._tensor(np.asarray(users))[:, None].expand(b, m)
        return self._forward_rows(u, self._tensor(items))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        self._module()  # fail clearly before n_items is read
        users = np.asarray(users)
        b, m = len(users), self.n_items
        if b == 0:
            return np.zeros((0, m), np.float32)
        u = self._tensor(users)[:, None].expand(b, m)
        i = torch.arange(m, device=self.device)[None, :].expand(b, m)
        return self._forward_rows(u, i)

    def _forward_rows(self, u: torch.Tensor, i: torch.Tensor) -> np.ndarray:
        """Logits of [B, M] pairs, a block of rows per forward pass, as float32 numpy."""
        module = self._module()
        rows = max(1, SCORE_PAIRS // u.shape[1])
        was_training = module.training
        module.eval()
        with torch.no_grad():
            out = torch.cat([module(u[s:s + rows].reshape(-1), i[s:s + rows].reshape(-1)).view(-1, u.shape[1])
                             for s in range(0, u.shape[0], rows)])
        module.train(was_training)
        return out.float().cpu().numpy()

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
