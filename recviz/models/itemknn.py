"""ItemKNN: item-based collaborative filtering on the binary train matrix (Sarwar et al. 2001,
adapted to implicit feedback as in Deshpande & Karypis 2004).

sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|·|U_j|) + shrink); each item keeps only its `neighbors` most
similar items; score(u, j) = Σ_{i ∈ I_u} sim_k(j, i).
"""

from __future__ import annotations

import numpy as np

from recviz.data.split import Split, target_train
from recviz.errors import ModelError
from recviz.models.base import Recommender
from recviz.models.spec import ModelSpec
from recviz.options import Option

NEIGHBORS = Option("neighbors", "int", 100, "similar items kept per item", label="Neighbours", low=1,
                   high=100_000, sweep=True)
SHRINK = Option("shrink", "float", 0.0, "added to the similarity's denominator: damps pairs with few co-occurrences",
                label="Shrinkage", low=0.0, high=1e6, sweep=True)
SPEC = ModelSpec("itemknn", "ItemKNN", "Sarwar et al. 2001; baseline of He et al. 2017", "recviz.models.itemknn:ItemKNN",
                 options=(NEIGHBORS, SHRINK),
                 summary="item–item cosine on the binary train matrix, the most similar `neighbors` per item")

# Dense item × item similarity: fine up to ~20k items (1.6 GB float32). Larger catalogues want a
# k-core filter first; saying so beats an out-of-memory kill.
MAX_ITEMS = 20_000


class ItemKNN(Recommender):
    spec = SPEC

    def __init__(self, **options):
        super().__init__(**options)
        self.neighbors, self.shrink = self.opts.neighbors, self.opts.shrink

    def fit(self, split: Split) -> None:
        train = target_train(split)  # the target behaviour's rows when there is one
        n_users, n_items = train.n_users, train.n_items
        if n_items > MAX_ITEMS:
            raise ModelError(f"ItemKNN keeps a dense {n_items}×{n_items} similarity matrix; "
                             f"that is too large (limit {MAX_ITEMS} items)",
                             fix="filter the data first, e.g. --min-item 10")
        x = np.zeros((n_users, n_items), dtype=np.float32)
        x[train.user, train.item] = 1.0  # duplicates (several behaviours) collapse to 1
        co = x.T @ x  # co-occurrence counts
        norms = np.sqrt(np.diag(co)).copy()
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-12)
        np.fill_diagonal(sim, 0.0)
        k = min(self.neighbors, n_items - 1)
        if k < n_items - 1:  # keep the k most similar items of each item j (row j)
            cut = np.argpartition(-sim, k, axis=1)[:, k:]
            np.put_along_axis(sim, cut, 0.0, axis=1)
        self.sim = sim  # sim[j, i]
        self.x = x

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return self.x[users] @ self.sim.T

    def get_state(self) -> dict[str, np.ndarray]:
        user, item = np.nonzero(self.x)  # the train matrix as pairs: far smaller than dense
        return {"sim": self.sim, "train_user": user, "train_item": item}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        self.sim = np.asarray(state["sim"], dtype=np.float32)
        self.x = np.zeros((n_users, n_items), dtype=np.float32)
        self.x[state["train_user"], state["train_item"]] = 1.0
