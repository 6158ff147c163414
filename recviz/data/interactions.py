"""The one table every reader returns and every model learns from.

Users and items get contiguous integer ids (0..n-1) so that models can index embedding tables with
them; `user_ids[u]` / `item_ids[i]` map back to the raw ids of the source file (always strings, so
that "0042" and "42" stay distinct and nothing needs pickling). Optional columns are `None` when the
source has no such thing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.arrays import sort_ints, unique
from recviz.data.npz import save_atomic
from recviz.errors import DataError

OPTIONAL_COLUMNS = ("rating", "timestamp", "behavior")


@dataclass(eq=False)
class GivenTest:
    """A test set that ships with the data (the NCF paper's files): one held-out item per user and
    the sampled negatives to rank it against. Internal ids."""

    user: np.ndarray  # int64 [n]
    item: np.ndarray  # int64 [n]
    negatives: np.ndarray  # int64 [n, N]


@dataclass(eq=False)
class Interactions:
    user: np.ndarray  # int64 [n], 0..n_users-1
    item: np.ndarray  # int64 [n], 0..n_items-1
    user_ids: np.ndarray  # str [n_users]: raw id of each internal user id
    item_ids: np.ndarray  # str [n_items]
    rating: np.ndarray | None = None  # float32 [n]
    timestamp: np.ndarray | None = None  # int64 [n], seconds
    behavior: np.ndarray | None = None  # int8 [n], codes into `behaviors`
    behaviors: tuple[str, ...] = ()
    items: pd.DataFrame | None = None  # index = internal item id; columns title, genres ("A|B")
    name: str = ""
    source: str = ""
    given_test: GivenTest | None = None
    meta: dict = field(default_factory=dict)  # free-form provenance: format, filters applied, ...

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        name: str = "",
        source: str = "",
        items: pd.DataFrame | None = None,
        behaviors: tuple[str, ...] | None = None,
        meta: dict | None = None,
    ) -> Interactions:
        """Build from a frame with columns `user`, `item` and optionally `rating`, `timestamp`,
        `behavior` (already validated). `items`, if given, is indexed by raw item id and has
        `title` / `genres` columns; rows for items absent from `df` are dropped."""
        user_ids, user = encode_ids(df["user"])
        item_ids, item = encode_ids(df["item"])
        rating = df["rating"].to_numpy(np.float32) if "rating" in df else None
        timestamp = df["timestamp"].to_numpy(np.int64) if "timestamp" in df else None
        behavior = None
        if "behavior" in df:
            behavior, behaviors = encode_behaviors(df["behavior"].astype(str), behaviors, source)
        return cls.from_codes(user, item, user_ids, item_ids, rating=rating, timestamp=timestamp,
                              behavior=behavior, behaviors=behaviors, items=items, name=name, source=source,
                              meta=meta)

    @classmethod
    def from_codes(cls, user: np.ndarray, item: np.ndarray, user_ids: np.ndarray, item_ids: np.ndarray, *,
                   rating=None, timestamp=None, behavior=None, behaviors=(), items: pd.DataFrame | None = None,
                   name: str = "", source: str = "", meta: dict | None = None) -> Interactions:
        """Build from contiguous codes and their raw ids (what a chunked reader assembles);
        `items` as in `from_frame`."""
        item_table = None
        if items is not None and len(items):
            items = items.copy()
            items.index = items.index.astype(str)
            item_table = items.reindex(item_ids)
            item_table.index = pd.RangeIndex(len(item_ids))
        return cls(user, item, user_ids, item_ids, rating=rating, timestamp=timestamp,
                   behavior=behavior, behaviors=tuple(behaviors or ()), items=item_table,
                   name=name, source=str(source), meta=dict(meta or {}))

    # ---- shape --------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def density(self) -> float:
        """Distinct (user, item) pairs over users × items: one int64 key a row, sorted in place."""
        if not len(self):
            return 0.0
        key = self.user.astype(np.int64) * self.n_items + self.item
        key = sort_ints(key, overwrite=True)
        pairs = 1 + int(np.count_nonzero(key[1:] != key[:-1]))
        return pairs / max(1, self.n_users * self.n_items)

    def subset(self, rows: np.ndarray) -> Interactions:
        """The same id space restricted to some rows (a boolean mask or row indices)."""
        pick = lambda a: None if a is None else a[rows]  # noqa: E731
        return replace(self, user=self.user[rows], item=self.item[rows], rating=pick(self.rating),
                       timestamp=pick(self.timestamp), behavior=pick(self.behavior))

    def behavior_code(self, name: str) -> int:
        if name not in self.behaviors:
            raise DataError(f"behaviour '{name}' is not in this dataset (it has {list(self.behaviors)})",
                            file=self.source, fix=f"choose one of {list(self.behaviors)}")
        return self.behaviors.index(name)

    # ---- views --------------------------------------------------------------------------------
    def to_frame(self, raw_ids: bool = False) -> pd.DataFrame:
        cols: dict[str, np.ndarray] = {"user": self.user, "item": self.item}
        if raw_ids:
            cols = {"user": self.user_ids[self.user], "item": self.item_ids[self.item]}
        if self.rating is not None:
            cols["rating"] = self.rating
        if self.timestamp is not None:
            cols["timestamp"] = self.timestamp
        if self.behavior is not None:
            cols["behavior"] = np.asarray(self.behaviors, dtype=object)[self.behavior]
        return pd.DataFrame(cols)

    def item_title(self, item: int) -> str:
        if self.items is not None and "title" in self.items and isinstance(self.items.at[item, "title"], str):
            return self.items.at[item, "title"]
        return f"item {self.item_ids[item]}"

    def stats(self) -> dict:
        """Summary numbers shown by `recviz inspect` and the Data page."""
        out = {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(self),
            "density": round(self.density, 6),
        }
        if self.rating is not None:
            values, counts = np.unique(self.rating, return_counts=True)
            out["ratings"] = {_num(v): int(c) for v, c in zip(values, counts)}
        if self.behavior is not None:
            counts = np.bincount(self.behavior, minlength=len(self.behaviors))
            out["behaviors"] = {b: int(c) for b, c in zip(self.behaviors, counts)}
        if self.timestamp is not None and len(self):
            out["time_range"] = [int(self.timestamp.min()), int(self.timestamp.max())]
        if self.given_test is not None:
            out["given_test"] = {"users": len(self.given_test.user),
                                 "negatives_per_user": int(self.given_test.negatives.shape[1])}
        return out

    def fingerprint(self) -> str:
        """A content hash: a stored split is only reused for the exact data it was drawn on."""
        h = hashlib.sha1()
        for a in (self.user, self.item, self.rating, self.timestamp, self.behavior):
            h.update(b"-" if a is None else memoryview(np.ascontiguousarray(a)).cast("B"))  # no copy
        h.update(json.dumps([self.n_users, self.n_items, list(self.behaviors)]).encode())
        if self.given_test is not None:
            h.update(self.given_test.negatives.tobytes())
        return h.hexdigest()[:16]

    # ---- persistence (npz, no pickle) ---------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically: a crash mid-write never leaves a half-written dataset behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"user": self.user, "item": self.item, "user_ids": self.user_ids.astype(str),
                  "item_ids": self.item_ids.astype(str)}
        for col in OPTIONAL_COLUMNS:
            if getattr(self, col) is not None:
                arrays[col] = getattr(self, col)
        if self.items is not None:
            for col in self.items.columns:
                arrays[f"items.{col}"] = self.items[col].fillna("").astype(str).to_numpy(dtype=str)
        if self.given_test is not None:
            g = self.given_test
            arrays.update({"given.user": g.user, "given.item": g.item, "given.negatives": g.negatives})
        header = {"name": self.name, "source": self.source, "behaviors": list(self.behaviors),
                  "meta": self.meta}
        arrays["header"] = np.array(json.dumps(header))
        return save_atomic(path, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Interactions:
        from recviz.data import npz

        npz.check(path)
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            get = lambda k: z[k] if k in z.files else None  # noqa: E731
            item_cols = {k.split(".", 1)[1]: z[k] for k in z.files if k.startswith("items.")}
            items = pd.DataFrame(item_cols).replace("", np.nan) if item_cols else None
            given = None
            if "given.user" in z.files:
                given = GivenTest(z["given.user"], z["given.item"], z["given.negatives"])
            return cls(z["user"], z["item"], z["user_ids"], z["item_ids"], rating=get("rating"),
                       timestamp=get("timestamp"), behavior=get("behavior"),
                       behaviors=tuple(header["behaviors"]), items=items, name=header["name"],
                       source=header["source"], given_test=given, meta=header.get("meta", {}))


def encode_behaviors(raw: pd.Series, behaviors: tuple[str, ...] | None, source: str = "") -> tuple[np.ndarray, tuple]:
    """Behaviour names → (int8 codes, names): into `behaviors` when given, else the sorted names."""
    names = tuple(behaviors) if behaviors else tuple(sorted(raw.unique()))
    codes = pd.Categorical(raw, categories=list(names)).codes
    if (codes < 0).any():
        unknown = sorted(set(raw.unique()) - set(names))
        raise DataError(f"unknown behaviour values {unknown}; expected one of {list(names)}",
                        file=source, column="behavior")
    return codes.astype(np.int8), names


def encode_ids(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Raw ids → (sorted unique raw ids as str, contiguous codes). Integer-looking ids sort
    numerically so that internal order follows the file's numbering (user 2 before user 10).

    The rows are hashed once (`pd.factorize`); only the distinct ids are parsed and sorted, which
    is what keeps 10M-row logs fast."""
    if isinstance(raw.dtype, pd.CategoricalDtype):  # already factorized (validate: integer ids)
        first_seen, uniq = raw.cat.codes.to_numpy().astype(np.int64), raw.cat.categories
        used = np.bincount(first_seen, minlength=len(uniq)) > 0  # rows dropped as duplicates
        if not used.all():
            first_seen, uniq = (np.cumsum(used) - 1)[first_seen], uniq[used]
    else:
        first_seen, uniq = pd.factorize(raw.astype(str), sort=False)
    uniq = np.asarray(uniq, dtype=object).astype(str)
    numeric = pd.to_numeric(pd.Series(uniq), errors="coerce").to_numpy()
    if len(uniq) and not np.isnan(numeric).any():
        if len(unique(numeric)) == len(uniq):  # each number is written one way
            order = np.argsort(numeric, kind="stable")
        else:  # "0042" and "42" are different ids: numeric order, then text order among equal numbers
            order = np.lexsort((uniq, numeric))
    else:
        order = np.argsort(uniq, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return uniq[order], rank[first_seen]


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else float(v)
