"""Vectorised sampling of items a user has not interacted with.

Two uses: evaluation candidates (drawn once per split, without replacement, never an item the user
touched in any split) and training negatives (drawn every epoch). Neither loops in Python per
sample: candidates use random keys with the seen items pushed to the end, negatives use rejection
rounds over whole arrays.
"""

from __future__ import annotations

import numpy as np

from recviz.errors import ProtocolError

# Cap on the [users × items] random-key block, so memory stays bounded on large catalogues.
_BLOCK_CELLS = 1 << 24


class SeenItems:
    """The set of (user, item) pairs a user interacted with, as a CSR-like index (sorted keys)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
        self.n_users, self.n_items = n_users, n_items
        keys = np.unique(users.astype(np.int64) * n_items + items.astype(np.int64))
        self.keys = keys
        self.indptr = np.searchsorted(keys, np.arange(n_users + 1, dtype=np.int64) * n_items)
        self.items = (keys % n_items).astype(np.int64)

    def count(self, users: np.ndarray) -> np.ndarray:
        return self.indptr[users + 1] - self.indptr[users]

    def rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row position in `users`, item) for every seen pair of the given users."""
        starts, counts = self.indptr[users], self.count(users)
        row = np.repeat(np.arange(len(users)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return row, self.items[np.repeat(starts, counts) + offset]

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        q = users.astype(np.int64) * self.n_items + items.astype(np.int64)
        pos = np.searchsorted(self.keys, q)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == q if len(self.keys) else np.zeros(len(q), bool)


def sample_candidates(users: np.ndarray, seen: SeenItems, n: int, rng: np.random.Generator) -> np.ndarray:
    """For each user, `n` distinct items drawn uniformly from the items that user never touched.

    Random keys in [0, 1) per (user, item), seen items get key 2, and the n smallest keys are a
    uniform sample without replacement from the unseen ones. Returns int64 [len(users), n], each
    row sorted (the order carries no information).
    """
    unseen = seen.n_items - seen.count(users)
    if len(users) and unseen.min() < n:
        bad = int(np.argmin(unseen))
        raise ProtocolError(
            f"user #{int(users[bad])} has only {int(unseen[bad])} items they never interacted with, "
            f"fewer than the {n} evaluation candidates asked for",
            fix=f"ask for fewer candidates (e.g. --candidates {int(unseen.min())}) or use the ratio protocol",
        )
    out = np.empty((len(users), n), dtype=np.int64)
    if n == 0:
        return out
    block = max(1, _BLOCK_CELLS // max(1, seen.n_items))
    for start in range(0, len(users), block):
        chunk = users[start:start + block]
        keys = rng.random((len(chunk), seen.n_items), dtype=np.float32)
        row, item = seen.rows(chunk)
        keys[row, item] = 2.0
        pick = np.argpartition(keys, n - 1, axis=1)[:, :n] if n < seen.n_items else np.argsort(keys, axis=1)[:, :n]
        out[start:start + len(chunk)] = np.sort(pick, axis=1)
    return out


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
    if len(bad):  # very dense users: draw the few left exactly, by random keys
        items[bad] = sample_candidates(users[bad], seen, 1, rng)[:, 0]
    return items
