"""ItemKNN: item-based collaborative filtering on the binary train matrix (Sarwar et al. 2001,
adapted to implicit feedback as in Deshpande & Karypis 2004).

sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|·|U_j|) + shrink); each item keeps only its `neighbors` most
similar items; score(u, j) = Σ_{i ∈ I_u} sim_k(j, i).

Sparse throughout, so any catalogue fits: co-occurrences come from a sparse product, a block of
items at a time, and each block keeps only its top-k per item before the next; the model is the
train matrix plus items × k neighbours. A tie at the k-th place goes to the smaller item id (the
dense version let argpartition pick). Scores are float32 sums over the user's items in id order,
the same whether asked for every item (`score_all`) or for given pairs (`score`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recviz.data.sampling import SeenItems
from recviz.data.split import Split, target_train
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

# Work per block, bounding memory: (item, item) co-occurrences when fitting, (pair, neighbour)
# look-ups when scoring pairs.
BLOCK_PAIRS = 1 << 20


class ItemKNN(Recommender):
    spec = SPEC

    def __init__(self, **options):
        super().__init__(**options)
        self.neighbors, self.shrink = self.opts.neighbors, self.opts.shrink

    def fit(self, split: Split) -> None:
        train = target_train(split)  # the target behaviour's rows when there is one
        self._set_train(train.user, train.item, train.n_users, train.n_items)
        self._set_sim(_top_k_cosine(self.x, self.neighbors, self.shrink))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """x[users] @ sim.T as one sparse product (float32, summed over the user's items in id
        order), made dense: the caller sizes the block of users."""
        if self._by_neighbour is None:  # sim.T as CSR: row i lists the items that keep i
            self._by_neighbour = self.sim.T.tocsr()
        return (self.x[np.asarray(users)] @ self._by_neighbour).toarray()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """score_all's numbers for [B, M] pairs only, without a B × n_items array: for each pair
        (u, j), j's kept neighbours that u has, summed in the same order and precision. Work is
        pairs × neighbours, in blocks of about BLOCK_PAIRS neighbour lookups."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        out = np.zeros(items.size, np.float32)
        u, j = np.repeat(users, items.shape[1]), items.ravel()
        step = max(1, BLOCK_PAIRS // max(1, int(np.diff(self.sim.indptr).max(initial=0))))
        for s in range(0, len(j), step):
            pair, i, v = _rows_of(self.sim, j[s:s + step])
            has = self._seen.contains(u[s:s + step][pair], i)
            np.add.at(out, s + pair[has], v[has])  # in order: pair, then neighbour id, as score_all
        return out.reshape(items.shape)

    def _set_train(self, users, items, n_users: int, n_items: int) -> None:
        """The users × items 0/1 matrix (a pair in several rows is one 1) and its sorted pair keys."""
        self._seen = SeenItems(np.asarray(users), np.asarray(items), n_users, n_items)
        self.x = sp.csr_matrix((np.ones(len(self._seen.items), np.float32), self._seen.items, self._seen.indptr),
                               shape=(n_users, n_items))

    def _set_sim(self, sim: sp.csr_matrix) -> None:
        sim.sort_indices()
        self.sim, self._by_neighbour = sim, None  # sim[j, i]: row j holds item j's neighbours

    def get_state(self) -> dict[str, np.ndarray]:
        user, item = self.x.nonzero()  # the train matrix as pairs
        return {"sim_indptr": self.sim.indptr, "sim_indices": self.sim.indices, "sim_data": self.sim.data,
                "train_user": user, "train_item": item}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        self._set_train(state["train_user"], state["train_item"], n_users, n_items)
        if "sim" in state:  # saved before the sparse version: dense [n_items, n_items], k per row
            self._set_sim(sp.csr_matrix(np.asarray(state["sim"], dtype=np.float32)))
        else:
            self._set_sim(sp.csr_matrix((np.asarray(state["sim_data"], dtype=np.float32), state["sim_indices"],
                                         state["sim_indptr"]), shape=(n_items, n_items)))


def _rows_of(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entries of the given rows of `m`: (position in `rows`, column, value), row by row."""
    start, count = m.indptr[rows], m.indptr[rows + 1] - m.indptr[rows]
    pos = np.repeat(np.arange(len(rows)), count)
    at = np.repeat(start - np.cumsum(count) + count, count) + np.arange(count.sum())
    return pos, m.indices[at], m.data[at]


def _top_k_cosine(x: sp.csr_matrix, k: int, shrink: float) -> sp.csr_matrix:
    """Row j: the k items i ≠ j of highest sim(j, i) > 0 (ties: smaller i first), as CSR.

    Items go in blocks whose co-occurrence work (Σ over the item's users of their item counts,
    the most nonzeros its row can have) adds up to about BLOCK_PAIRS. The arithmetic is the dense
    formula's, in float32, entry by entry."""
    n_items = x.shape[1]
    xt = x.T.tocsr()  # items × users
    norms = np.sqrt(np.diff(xt.indptr).astype(np.float32))  # sqrt |U_i|
    work = xt @ np.diff(x.indptr).astype(np.float64)
    cuts = np.searchsorted(np.cumsum(work), np.arange(1, int(work.sum() // BLOCK_PAIRS) + 1) * BLOCK_PAIRS)
    edges = np.unique(np.r_[0, cuts, n_items])
    kept = []
    for a, b in zip(edges[:-1], edges[1:]):
        co = (xt[a:b] @ x).tocsr()  # co-occurrence counts of items a..b-1 with every item
        i = co.indices
        j = np.repeat(np.arange(a, b, dtype=i.dtype), np.diff(co.indptr))
        sim = co.data / (norms[j] * norms[i] + shrink + 1e-12)
        keep = (i != j) & (sim > 0)
        j, i, sim = j[keep], i[keep], sim[keep]
        order = np.lexsort((i, -sim, j))  # by row, best first, then smaller id
        j, i, sim = j[order], i[order], sim[order]
        first = np.searchsorted(j, j)  # where each entry's row starts
        top = np.arange(len(j)) - first < k
        kept.append((j[top], i[top], sim[top]))
    j, i, sim = (np.concatenate(part) for part in zip(*kept))
    indptr = np.r_[0, np.cumsum(np.bincount(j, minlength=n_items))]
    out = sp.csr_matrix((sim.astype(np.float32), i, indptr), shape=(n_items, n_items))
    out.sort_indices()
    return out
