"""Vectorised sampling of items a user has not interacted with.

Two uses: evaluation candidates (drawn once per split, without replacement, never an item the user
touched in any split) and training negatives (drawn every epoch). Neither loops in Python per
sample, and neither allocates users × items: candidates are drawn as ranks among each user's unseen
items and mapped to item ids through the user's sorted seen items; negatives use rejection rounds
over whole arrays.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from recviz import native
from recviz.data.arrays import sort_ints
from recviz.errors import ProtocolError

# Candidate cells (users × candidates) drawn per block: bounds the temporaries on large splits.
_BLOCK_CELLS = 1 << 20
# A user with at most this many times `n` unseen items gets its ranks by random keys over all of
# them (≤ 4n keys); above it by rejection of repeated ranks (each redraw repeats with p ≤ 1/4).
_FEW = 4


class SeenItems:
    """The set of (user, item) pairs a user interacted with, as a CSR-like index (sorted keys)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
        self.n_users, self.n_items = n_users, n_items
        keys = users.astype(np.int64)  # one key array, sorted and deduplicated in place
        keys *= n_items
        keys += items
        keys = sort_ints(keys, overwrite=True)
        if len(keys) > 1:
            keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
        self.keys = keys
        self.indptr = np.searchsorted(keys, np.arange(n_users + 1, dtype=np.int64) * n_items)
        self.items = keys % n_items

    def count(self, users: np.ndarray) -> np.ndarray:
        return self.indptr[users + 1] - self.indptr[users]

    def rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row position in `users`, item) for every seen pair of the given users."""
        starts, counts = self.indptr[users], self.count(users)
        row = np.repeat(np.arange(len(users)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return row, self.items[np.repeat(starts, counts) + offset]

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Whether each user has each item: a search in that user's items only where the compiled
        `seen_pairs_i64` can be had (training's negatives ask this of every sample; at 100M rows a
        search of the whole key array costs ~27 cache misses), else one in all the keys."""
        kernel = native.kernel("seen_pairs_i64")
        if kernel is not None and len(self.keys):
            u, i = (np.ascontiguousarray(a, np.int64) for a in np.broadcast_arrays(users, items))
            out = np.empty(u.shape, bool)
            if kernel(self.items.ctypes.data, self.indptr.ctypes.data, self.n_users, self.n_items, u.ctypes.data,
                      i.ctypes.data, u.size, out.ctypes.data) == 0:
                return out
            raise IndexError(f"a (user, item) pair outside {self.n_users:,} users × {self.n_items:,} items")
        q = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q if len(self.keys) else np.zeros(len(q), bool)

    def nth_unseen(self, users: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """The item id of each user's `rank`-th (0-based, in id order) never-touched item.

        With the user's seen items s_0 < s_1 < ..., s_j - j items are unseen below s_j, so the r-th
        unseen item is r + #{j : s_j - j ≤ r}: one binary search in `_gaps` — in the user's own
        segment of it where the compiled `nth_unseen_i64` can be had (log of the user's items, not
        of the log's). `users` and `ranks` broadcast; ranks must be below the user's unseen count.
        """
        users = np.asarray(users, dtype=np.int64)
        kernel = native.kernel("nth_unseen_i64")
        if kernel is not None:
            u, r = (np.ascontiguousarray(a, np.int64) for a in np.broadcast_arrays(users, ranks))
            out = np.empty(u.shape, np.int64)
            if kernel(self._gaps.ctypes.data, self.indptr.ctypes.data, self.n_users, self.n_items, u.ctypes.data,
                      r.ctypes.data, u.size, 1, out.ctypes.data) == 0:
                return out
            raise IndexError(f"a user id outside 0..{self.n_users - 1}")
        query = users * (self.n_items + 1) + ranks
        return ranks + np.searchsorted(self._gaps, query, side="right") - self.indptr[users]

    @cached_property
    def _gaps(self) -> np.ndarray:
        """user·(n_items+1) + (unseen items below it) per seen pair: non-decreasing, as `keys`."""
        user = self.keys // self.n_items
        before = np.arange(len(self.keys)) - self.indptr[user]  # seen items of the user below it
        return user * (self.n_items + 1) + self.items - before


def sample_candidates(users: np.ndarray, seen: SeenItems, n: int, rng: np.random.Generator,
                      user_ids: np.ndarray | None = None) -> np.ndarray:
    """For each user, `n` distinct items drawn uniformly from the items that user never touched;
    `user_ids` (raw ids by internal id) name a user with too few in the error.

    Draws n distinct ranks uniformly from [0, unseen) per user (`_distinct_ranks`) and maps each
    rank to the item it numbers among the user's unseen ones (`SeenItems.nth_unseen`): exact, and
    O(n · log seen) per user whatever the catalogue's size. Returns int64 [len(users), n], each row
    sorted (the order carries no information).
    """
    users = np.asarray(users, dtype=np.int64)
    unseen = seen.n_items - seen.count(users)
    if len(users) and unseen.min() < n:
        bad = int(np.argmin(unseen))
        who = repr(str(user_ids[users[bad]])) if user_ids is not None else f"#{int(users[bad])}"
        raise ProtocolError(
            f"user {who} has only {int(unseen[bad])} items they never interacted with, "
            f"fewer than the {n} evaluation candidates asked for",
            fix=f"ask for fewer candidates (e.g. --candidates {int(unseen.min())}) or use the ratio protocol",
        )
    out = np.empty((len(users), n), dtype=np.int64)
    if n == 0:
        return out
    step = max(1, _BLOCK_CELLS // (_FEW * n))
    for start in range(0, len(users), step):
        block = slice(start, start + step)
        ranks = _distinct_ranks(unseen[block], n, rng)
        out[block] = np.sort(seen.nth_unseen(users[block, None], ranks), axis=1)
    return out


def _distinct_ranks(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 [len(sizes), n]: row b holds n distinct values drawn uniformly, without replacement,
    from [0, sizes[b]) (every sizes[b] ≥ n).

    Rows with few values to choose from (≤ _FEW·n) take the n smallest of random keys over all of
    them. The others draw n values and redraw, in rounds over the rows that still have one, every
    value that repeats an earlier one in its row. Which draws are redrawn depends only on which
    draws are equal, never on their values, so relabelling the values leaves the procedure's law
    unchanged: the set drawn is uniform among the n-subsets.
    """
    out = np.empty((len(sizes), n), dtype=np.int64)
    few = sizes <= _FEW * n
    if few.any():
        size = sizes[few]
        keys = rng.random((len(size), int(size.max())))
        keys[np.arange(keys.shape[1]) >= size[:, None]] = np.inf  # past the user's unseen items
        out[few] = np.argpartition(keys, n - 1, axis=1)[:, :n]
    many = np.flatnonzero(~few)
    if len(many):
        size = sizes[many]
        ranks = rng.integers(0, size[:, None], size=(len(many), n))
        todo = np.arange(len(many))
        while len(todo):
            repeat = _repeats(ranks[todo])
            has = repeat.any(axis=1)
            todo, repeat = todo[has], repeat[has]
            row, col = np.nonzero(repeat)
            ranks[todo[row], col] = rng.integers(0, size[todo[row]])
        out[many] = ranks
    return out


def _repeats(values: np.ndarray) -> np.ndarray:
    """bool, same shape: the value already occurs earlier in its row."""
    order = np.argsort(values, axis=1, kind="stable")  # equal values keep their column order
    ordered = np.take_along_axis(values, order, axis=1)
    repeat = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], ordered[:, 1:] == ordered[:, :-1], axis=1)
    return repeat


def sample_negatives(users: np.ndarray, seen: SeenItems, rng: np.random.Generator,
                     max_rounds: int = 50) -> np.ndarray:
    """One uniformly drawn item per entry of `users` that the user has not interacted with.

    Rejection in rounds over the whole array: draw all, redraw only the collisions. With typical
    densities (< 10 %) a handful of rounds suffice. Users who have seen every item cannot get a
    negative; that is the caller's to prevent.
    """
    items = rng.integers(0, seen.n_items, size=len(users), dtype=np.int64)
    bad = np.flatnonzero(seen.contains(users, items))
    for _ in range(max_rounds):
        if not len(bad):
            return items
        items[bad] = rng.integers(0, seen.n_items, size=len(bad), dtype=np.int64)
        bad = bad[seen.contains(users[bad], items[bad])]
    if len(bad):  # very dense users: draw the few left exactly, as one candidate each
        items[bad] = sample_candidates(users[bad], seen, 1, rng)[:, 0]
    return items
