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

from recviz import native
from recviz.data.arrays import unique
from recviz.data.sampling import SeenItems
from recviz.data.split import Split, target_rows
from recviz.models.base import Recommender
from recviz.models.itemknn_spec import SPEC

# Work per block, bounding memory: (item, item) co-occurrences when fitting, (pair, neighbour)
# look-ups when scoring pairs.
BLOCK_PAIRS = 1 << 20
# Cells of the boolean (user, item) matrix that marks a block of users' train items when scoring pairs.
MASK_CELLS = 1 << 24
# When `score_all` builds sim's transpose (as large as the model itself): at once for a model of at
# most TRANSPOSE_FREE kept pairs (256 MB), else only after PAIR_ROW_CELLS cells were scored through
# the pair kernel — more than a run's stored top-N lists (`experiments.topn.TOPN_CELLS`, a test
# holds it), so at 100M rows (375M pairs, 3 GB) storing them never doubles the model's memory.
TRANSPOSE_FREE = 1 << 25
PAIR_ROW_CELLS = 1 << 28


class ItemKNN(Recommender):
    spec = SPEC

    def __init__(self, **options):
        super().__init__(**options)
        self.neighbors, self.shrink = self.opts.neighbors, self.opts.shrink

    def fit(self, split: Split) -> None:
        rows, data = target_rows(split), split.data  # the target behaviour's train rows when there is one
        self._set_train(data.user[rows], data.item[rows], data.n_users, data.n_items)
        self._set_sim(_top_k_cosine(self.x, self.neighbors, self.shrink))

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Every item's score for a block of users (the caller sizes it), float32, summed over the
        user's items in id order: one sparse product x[users] @ sim.T. On a large model the first
        PAIR_ROW_CELLS cells go through the compiled pair kernel over every item instead, which
        needs no transpose (see TRANSPOSE_FREE); both give the same numbers."""
        users = np.asarray(users, dtype=np.int64)
        n_items = self.sim.shape[0]
        cells = len(users) * n_items
        if self._by_neighbour is None and self.sim.nnz > TRANSPOSE_FREE and self._row_cells + cells <= PAIR_ROW_CELLS:
            out = self._pair_kernel(users, None, n_items)
            if out is not None:
                self._row_cells += cells
                return out
        if self._by_neighbour is None:  # sim.T as CSR: row i lists the items that keep i
            self._by_neighbour = self.sim.T.tocsr()
        return (self.x[users] @ self._by_neighbour).toarray()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """score_all's numbers for [B, M] pairs only, without a B × n_items float array: for each
        pair (u, j), j's kept neighbours that u has, summed in the same order and precision.

        Work is pairs × neighbours: at 100M rows, 1M users × 101 candidates × 100 neighbours =
        10^10 look-ups. The compiled kernel (`recviz/native/itemknn.c`) does them in one pass;
        where it cannot be built, `_score_numpy` gives the same numbers."""
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        out = self._pair_kernel(users, np.ascontiguousarray(items), items.shape[1])
        return self._score_numpy(users, items) if out is None else out

    def _pair_kernel(self, users: np.ndarray, items: np.ndarray | None, m: int) -> np.ndarray | None:
        """[len(users), m] scores by `knn_pair_scores_f32` (items None: every item), or None where
        the kernel cannot be had or the model's index arrays are not the int32 it reads."""
        kernel = native.kernel("knn_pair_scores_f32")
        if kernel is None or self.sim.indices.dtype != np.int32 or self.x.indices.dtype != np.int32:
            return None
        users = np.ascontiguousarray(users)
        out, mask = np.zeros((len(users), m), np.float32), np.zeros(self.sim.shape[0], np.uint8)
        n_users = self.x.shape[0]
        done = kernel(self._sim_indptr.ctypes.data, self.sim.indices.ctypes.data, self.sim.data.ctypes.data,
                      self.sim.shape[0], n_users, self._x_indptr.ctypes.data, self.x.indices.ctypes.data,
                      users.ctypes.data, None if items is None else items.ctypes.data, len(users), m,
                      out.ctypes.data, mask.ctypes.data)
        if done < 0:
            raise IndexError(f"a pair names a user or item outside this model's {n_users:,} users × "
                             f"{self.sim.shape[0]:,} items")
        return out

    def _score_numpy(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """`score` in numpy operations. Users go in blocks whose items are marked in one reusable
        boolean matrix [block, n_items] of at most MASK_CELLS cells (set, read, then cleared: a
        look-up per neighbour instead of a binary search in the whole train), and whose neighbour
        look-ups stay near BLOCK_PAIRS."""
        n_items, m = self.sim.shape[0], items.shape[1]
        out = np.zeros(items.shape, np.float32)
        widest = max(1, int(np.diff(self.sim.indptr).max(initial=0)))
        step = max(1, min(MASK_CELLS // max(1, n_items), BLOCK_PAIRS // max(1, m * widest)))
        mask = np.zeros((min(step, len(users)), n_items), bool)
        flat_mask = mask.reshape(-1)
        for s in range(0, len(users), step):
            block = users[s:s + step]
            rows = self.x[block]  # the block's users' items
            marked = np.repeat(np.arange(len(block)) * n_items, np.diff(rows.indptr)) + rows.indices
            flat_mask[marked] = True
            pick = self.sim[items[s:s + step].ravel()]  # each pair's neighbour list, in id order
            owner = np.repeat(np.repeat(np.arange(len(block)) * n_items, m), np.diff(pick.indptr))
            pick.data *= flat_mask[owner + pick.indices]  # 0 where the user lacks the neighbour
            # a CSR product sums each row in order in float32, as score_all; adding 0 changes nothing
            out[s:s + step] = (pick @ np.ones(n_items, np.float32)).reshape(len(block), m)
            flat_mask[marked] = False
        return out

    def _set_train(self, users, items, n_users: int, n_items: int) -> None:
        """The users × items 0/1 matrix, a pair in several rows one 1, each user's items sorted
        (int32 indices where they fit: the model holds no other index of the train pairs)."""
        seen = SeenItems(np.asarray(users), np.asarray(items), n_users, n_items)
        index = np.int32 if max(len(seen.items), n_items) < 2**31 else np.int64
        self.x = sp.csr_matrix((np.ones(len(seen.items), np.float32), seen.items.astype(index),
                                seen.indptr.astype(index)), shape=(n_users, n_items))
        self._x_indptr = seen.indptr  # int64, what the kernel reads

    def _set_sim(self, sim: sp.csr_matrix) -> None:
        """sim[j, i]: row j holds item j's neighbours, in increasing i (float32 values)."""
        sim.sort_indices()
        self.sim, self._by_neighbour, self._row_cells = sim, None, 0
        self._sim_indptr = sim.indptr.astype(np.int64)  # what the kernel reads, whatever scipy chose

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


def _top_k_cosine(x: sp.csr_matrix, k: int, shrink: float) -> sp.csr_matrix:
    """Row j: the k items i ≠ j of highest sim(j, i) > 0 (ties: smaller i first), as CSR.

    Items go in blocks whose co-occurrence work (Σ over the item's users of their item counts,
    the most nonzeros its row can have) adds up to about BLOCK_PAIRS, so memory is bounded by the
    block, never items². The arithmetic is the dense formula's, in float32, entry by entry; each
    block keeps its rows' top k by selection (`_top_k_of_rows`, linear), not by sorting every
    co-occurrence: at 10M rows a fit makes ~10⁹ of them and keeps 4·10⁷."""
    n_items = x.shape[1]
    xt = x.T.tocsr()  # items × users
    norms = np.sqrt(np.diff(xt.indptr).astype(np.float32))  # sqrt |U_i|
    work = xt @ np.diff(x.indptr).astype(np.float64)
    cuts = np.searchsorted(np.cumsum(work), np.arange(1, int(work.sum() // BLOCK_PAIRS) + 1) * BLOCK_PAIRS)
    edges = unique(np.r_[0, cuts, n_items])
    # The kept pairs go straight into their final arrays, sized by an upper bound (a row keeps at
    # most k, and at most its co-occurrence work); pages past what is written are never touched.
    # At 100M rows that is 375M pairs: 3 GB, where lists of blocks joined at the end held it twice.
    cap = int(np.minimum(work, k).sum())
    index = np.int32 if max(cap, n_items) < 2**31 else np.int64  # scipy keeps int32 indices as they are
    cols, vals = np.empty(cap, index), np.empty(cap, np.float32)
    indptr, at = np.zeros(n_items + 1, index), 0
    for a, b in zip(edges[:-1], edges[1:]):
        co = (xt[a:b] @ x).tocsr()  # co-occurrence counts of items a..b-1 with every item
        i, lens = co.indices, np.diff(co.indptr)
        j = np.repeat(np.arange(a, b, dtype=i.dtype), lens)
        sim = co.data / (norms[j] * norms[i] + shrink + 1e-12)
        sim[i == j] = 0  # an item is not its own neighbour
        keep = np.flatnonzero(_top_k_of_rows(sim, i, lens, k))
        cols[at:at + len(keep)], vals[at:at + len(keep)] = i[keep], sim[keep]
        indptr[a + 1:b + 1] = at + np.cumsum(np.bincount(j[keep] - a, minlength=b - a))
        at += len(keep)
    out = sp.csr_matrix((vals[:at], cols[:at], indptr), shape=(n_items, n_items))
    out.sort_indices()
    return out


def _top_k_of_rows(values: np.ndarray, cols: np.ndarray, lens: np.ndarray, k: int) -> np.ndarray:
    """Which entries of a CSR block (rows of `lens` consecutive entries, any column order) are
    among their row's k largest positive values, ties at the k-th place to the smaller column.

    The k-th largest value t of each row longer than k comes from np.partition over the rows
    padded with zeros, grouped by length (each row padded at most to twice its length, so the work
    is linear in the entries); every entry above t is kept, and of the entries equal to t the
    smallest columns fill the row to k (only those ties are sorted)."""
    n_rows = len(lens)
    row = np.repeat(np.arange(n_rows), lens)
    start = np.cumsum(lens) - lens
    thr = np.zeros(n_rows, values.dtype)  # rows of ≤ k entries keep every positive one
    big = np.flatnonzero(lens > k)
    width = 1 << np.ceil(np.log2(np.maximum(lens[big], 1))).astype(np.int64)  # ≥ the row's length
    for w in np.unique(width):  # a few widths (powers of two)
        rows = big[width == w]
        pos, at = _entries(start[rows], lens[rows])
        pad = np.zeros((len(rows), int(w)), values.dtype)  # zero: below every similarity kept
        pad[pos, at - start[rows][pos]] = values[at]
        thr[rows] = np.partition(pad, int(w) - k, axis=1)[:, int(w) - k]
    t = thr[row]
    keep = values > t
    ties = np.flatnonzero((values == t) & (t > 0))
    if len(ties):
        need = k - np.bincount(row[keep], minlength=n_rows)  # places left for ties, per row
        ties = ties[np.lexsort((cols[ties], row[ties]))]  # by row, then column
        tie_row = row[ties]
        rank = np.arange(len(ties)) - np.searchsorted(tie_row, tie_row)  # among the row's ties
        keep[ties[rank < need[tie_row]]] = True
    return keep


def _entries(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For runs of `counts` consecutive positions from `starts`: (run number, position) of each."""
    run = np.repeat(np.arange(len(counts)), counts)
    return run, np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
