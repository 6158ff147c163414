"""Finding a user (or item) by the raw id people know, among a million of them.

A select box of every user id sends them all to the browser; a search sends only what matches.
`IdIndex` sorts the raw ids once (a page caches it) and then answers "this id, or ids starting
with this" by binary search: O(log n + shown) per keystroke, however many ids there are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHOWN = 20  # matches listed at most


@dataclass(frozen=True)
class Matches:
    """Internal ids of the ids matching a query, at most the `limit` asked for, in text order
    (an exact match first: it sorts before every longer id it begins), and how many match in all."""
    ids: np.ndarray
    total: int
    exact: bool


@dataclass(frozen=True)
class IdIndex:
    """Raw ids (as text) and their order when sorted as text."""
    ids: np.ndarray
    order: np.ndarray

    @classmethod
    def build(cls, raw_ids) -> IdIndex:
        ids = np.asarray(raw_ids).astype(str)
        return cls(ids, np.argsort(ids, kind="stable"))

    def search(self, query, limit: int = SHOWN) -> Matches:
        """The ids equal to `query` or starting with it (spaces around it ignored); an empty query
        matches every id. At most `limit` are returned; `total` counts them all."""
        q = str(query).strip()
        width = self.ids.dtype.itemsize // 4  # numpy would cut a longer query to this width
        if len(self.ids) == 0 or len(q) > width:
            return Matches(np.zeros(0, dtype=np.int64), 0, False)
        lo, hi = 0, len(self.ids)
        if q:  # the ids starting with q sort from q itself up to q followed by the last code point
            lo = int(np.searchsorted(self.ids, q, side="left", sorter=self.order))
            hi = int(np.searchsorted(self.ids, q + "\U0010ffff", side="left", sorter=self.order))
        found = self.order[lo:min(hi, lo + max(0, limit))].astype(np.int64)
        return Matches(found, hi - lo, bool(len(found)) and self.ids[found[0]] == q)
