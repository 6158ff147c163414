"""One user's history, a page at a time: the rows a user has, oldest first, and the part of the
split each row fell in.

On a large log a page must not scan the whole log for every user it shows, nor build a table of
a user's 20,000 clicks to display 50 of them. `RowIndex` groups the rows by user once per
dataset (and split) — a page caches it — so a user's rows cost O(their rows), and `history_page`
builds the table of one page of them only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recviz.analysis.dataset import item_titles
from recviz.data.interactions import Interactions
from recviz.data.sampling import SeenItems

PARTS = ("train", "valid", "test")
UNUSED = "unused"  # a row in no part of the split (see `user_history`)
PART_NAMES = np.array([*PARTS, UNUSED], dtype=object)  # a row's part code indexes this
PAGE_SIZE = 50  # rows per page of a history
PAGE_SIZES = (20, 50, 100, 200)  # what a person may choose


@dataclass(frozen=True)
class RowIndex:
    """The rows of every user, grouped: user u's rows are `order[starts[u]:starts[u + 1]]`, in
    file order; with a split, `parts[row]` indexes `PART_NAMES`. Memory: one int per row (int32
    below 2**31 rows) plus one byte per row for the parts."""
    order: np.ndarray
    starts: np.ndarray
    parts: np.ndarray | None = None

    @classmethod
    def build(cls, inter: Interactions, split=None) -> RowIndex:
        """Group `inter`'s rows by user (a stable sort: O(rows log rows), once); with `split` (drawn
        on this very table), note each row's part."""
        kind = np.int32 if len(inter) < 2**31 else np.int64
        # numpy's sort, not the radix one (`data.arrays`): built once, and its four row-long int64
        # buffers would be 3 GB beside a 100M-row log the page already holds
        order = np.argsort(inter.user, kind="stable").astype(kind, copy=False)
        starts = np.zeros(inter.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(inter.user, minlength=inter.n_users), out=starts[1:])
        return cls(order, starts, None if split is None else row_parts(split, len(inter)))

    def rows(self, user: int) -> np.ndarray:
        """User `user`'s row indices, in file order."""
        return self.order[self.starts[user]:self.starts[user + 1]].astype(np.int64)


def row_parts(split, n_rows: int) -> np.ndarray:
    """The part of every row of `split.data`: uint8 codes into `PART_NAMES` (one byte a row)."""
    if len(split.data) != n_rows:
        raise ValueError(f"the split was drawn on {len(split.data):,} rows, this table has {n_rows:,}: "
                         "pass the split of this very dataset")
    part = np.full(n_rows, len(PARTS), dtype=np.uint8)
    for code, rows in enumerate((split.train_rows, split.valid_rows, split.test_rows)):
        part[np.asarray(rows, dtype=np.int64)] = code
    return part


def _oldest_first(inter: Interactions, rows: np.ndarray) -> np.ndarray:
    if inter.timestamp is not None:
        rows = rows[np.argsort(inter.timestamp[rows], kind="stable")]
    return rows


def _user_rows(inter: Interactions, user: int, index: RowIndex | None) -> np.ndarray:
    if not 0 <= user < inter.n_users:
        raise ValueError(f"user {user} is not in this dataset (0..{inter.n_users - 1})")
    rows = index.rows(user) if index is not None else np.flatnonzero(inter.user == user)
    return _oldest_first(inter, rows)


def _frame(inter: Interactions, rows: np.ndarray, parts: np.ndarray | None) -> pd.DataFrame:
    """The history table of exactly these rows (titles and genres of their items only)."""
    items = inter.item[rows]
    out = pd.DataFrame({"item": np.asarray(inter.item_ids)[items], "title": item_titles(inter, items)})
    genres = None
    if inter.items is not None and "genres" in inter.items:
        genres = inter.items["genres"].reindex(items).fillna("").to_numpy(dtype=object)
    out["genres"] = genres if genres is not None else ""
    if inter.rating is not None:
        out["rating"] = inter.rating[rows].astype(float)
    if inter.behavior is not None:
        out["behavior"] = np.asarray(inter.behaviors, dtype=object)[inter.behavior[rows]]
    if inter.timestamp is not None:
        out["date"] = pd.to_datetime(inter.timestamp[rows], unit="s")
    if parts is not None:
        out["part"] = PART_NAMES[parts]
    return out


def _parts_of(split, inter: Interactions, rows: np.ndarray, index: RowIndex | None) -> np.ndarray | None:
    if split is None:
        return None
    if index is not None and index.parts is not None:
        return index.parts[rows]
    if len(split.data) != len(inter):
        raise ValueError(f"the split was drawn on {len(split.data):,} rows, this table has {len(inter):,}: "
                         "pass the split of this very dataset")
    codes = np.full(len(rows), len(PARTS), dtype=np.uint8)
    for code, part_rows in enumerate((split.train_rows, split.valid_rows, split.test_rows)):
        codes[np.isin(rows, np.asarray(part_rows, dtype=np.int64))] = code
    return codes


def user_history(inter: Interactions, user: int, split=None, index: RowIndex | None = None) -> pd.DataFrame:
    """One user's rows, oldest first (file order breaks ties and stands in for missing times).

    Columns: item (raw id), title, genres, then rating / behavior / date where the data has
    them, then `part` when a split is given: "train", "valid" or "test" by row index into
    `split.data` (which must be this very table). A row in no part is "unused": e.g. an earlier
    click on the item that became the user's test item (holding out a pair removes all its rows
    from train), or a cold user's held-out rows under the ratio protocol. `index` (built once
    for this table and split) spares the scan of the whole log."""
    rows = _user_rows(inter, user, index)
    return _frame(inter, rows, _parts_of(split, inter, rows, index))


@dataclass(frozen=True)
class Page:
    """Rows start..stop (0-based, stop excluded) of `total`: page `page` of `pages` (0-based),
    `size` rows a page."""
    page: int
    pages: int
    start: int
    stop: int
    total: int
    size: int


def page_bounds(total: int, page: int, page_size: int = PAGE_SIZE) -> Page:
    """Which rows page `page` shows; a page past either end is moved to that end (a user with
    fewer rows than the page a person was on shows its last page, not an empty one)."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    pages = max(1, -(-total // page_size))
    page = min(max(0, int(page)), pages - 1)
    return Page(page, pages, page * page_size, min(total, (page + 1) * page_size), total, page_size)


def history_page(inter: Interactions, user: int, split=None, page: int = 0, page_size: int = PAGE_SIZE,
                 index: RowIndex | None = None) -> tuple[pd.DataFrame, Page]:
    """One page of `user_history`: the table of those rows only, and where the page is."""
    rows = _user_rows(inter, user, index)
    where = page_bounds(len(rows), page, page_size)
    rows = rows[where.start:where.stop]
    return _frame(inter, rows, _parts_of(split, inter, rows, index)), where


def part_history(inter: Interactions, user: int, split, part: str = "test",
                 index: RowIndex | None = None) -> pd.DataFrame:
    """The user's rows in one part of the split (e.g. what was held out for test): found among
    all their rows, whichever page of the history is shown."""
    rows = _user_rows(inter, user, index)
    codes = _parts_of(split, inter, rows, index)
    keep = codes == PARTS.index(part)
    return _frame(inter, rows[keep], codes[keep])


def part_rows(inter: Interactions, user: int, split, part: str = "train", index: RowIndex | None = None) -> np.ndarray:
    """The user's row indices in one part of the split, oldest first, without scanning the whole
    log when `index` is given."""
    rows = _user_rows(inter, user, index)
    return rows[_parts_of(split, inter, rows, index) == PARTS.index(part)]


def part_items(inter: Interactions, user: int, split, part: str = "train", index: RowIndex | None = None) -> np.ndarray:
    """The items of the user's rows in one part of the split (e.g. the train items an embedding
    map highlights), without scanning the whole log when `index` is given."""
    return inter.item[part_rows(inter, user, split, part, index)]


def known_items(inter: Interactions, user: int, index: RowIndex) -> SeenItems:
    """The items excluded from the user's full-ranking top-N — their train and validation pairs —
    from `index` (built with the split): equal to `split.known_before("test", users=[user])`, but
    costing that user's rows (plus the SeenItems offsets, one per user) instead of a mask over
    every train row of the log."""
    if index.parts is None:
        raise ValueError("the row index was built without a split: build it with the split to know its parts")
    rows = _user_rows(inter, user, index)
    rows = rows[index.parts[rows] <= PARTS.index("valid")]
    return SeenItems(inter.user[rows], inter.item[rows], inter.n_users, inter.n_items)
