"""Interactions from a large delimited file, chunk by chunk, so that reading (and saving) a big CSV
takes memory of the order of the arrays it becomes, not of its text.

Why: parsed whole, every cell of a table is a Python string (~60 bytes), so a 600 MB CSV took
6.6 GB. Here each chunk (`recviz.data.formats.delimited.iter_delimited`) is validated on its own,
exactly as a whole frame would be (`validate.validate_with_lines`), and turned at once into compact arrays:
ids become int32 codes through id maps grown chunk by chunk (`_IdMap`), ratings float32, timestamps
the float64 values as written, behaviours int8. Only what needs the whole column waits for the
end, and then works on those arrays: the ids' final order (the one `Interactions.from_frame`
gives), the timestamps' unit (decided from all values), and the duplicate rule.
"""

from __future__ import annotations

import bisect
import gc
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions, encode_ids
from recviz.data.timestamps import finish_timestamps
from recviz.data.validate import DEDUP_FIX, validate_with_lines
from recviz.errors import DataError


class _IdMap:
    """Raw ids (text) → int32 codes in order of first appearance, grown one chunk at a time."""

    def __init__(self) -> None:
        self.index = pd.Index([], dtype="str")

    def encode(self, raw: pd.Series) -> np.ndarray:
        codes, uniques = raw.astype("str").factorize()  # on the parser's string array: no Python objects
        pos = self.index.get_indexer(uniques)
        new = pos < 0
        if new.any():
            pos[new] = len(self.index) + np.arange(int(new.sum()))
            self.index = self.index.append(pd.Index(uniques[new], dtype="str"))
        return pos.astype(np.int32)[codes]

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw ids in their final order, final code of each first-appearance code)."""
        ids, final = encode_ids(pd.Series(self.index))
        return ids, final


class _Lines:
    """The file line of every row (`lines[k]`), kept as one (first row, first line) pair per chunk
    — plus the lines themselves for a chunk that skipped blank lines — instead of an array as long
    as the file: only messages ever look a line up."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.firsts: list[int] = []
        self.explicit: dict[int, np.ndarray] = {}
        self.n = 0

    def add(self, line_of: np.ndarray) -> None:
        if int(line_of[-1]) - int(line_of[0]) != len(line_of) - 1:
            self.explicit[len(self.starts)] = line_of
        self.starts.append(self.n)
        self.firsts.append(int(line_of[0]))
        self.n += len(line_of)

    def __getitem__(self, k) -> int:
        i = bisect.bisect_right(self.starts, int(k)) - 1
        off = int(k) - self.starts[i]
        return int(self.explicit[i][off]) if i in self.explicit else self.firsts[i] + off


class _Column:
    """One column filled chunk by chunk into a single preallocated array (grown by half when the
    estimate of rows falls short): no list of pieces to concatenate at the end — the pieces and
    their concatenation would be held at once, and thousands of small arrays fragment the heap."""

    def __init__(self, dtype, capacity: int):
        self.buf, self.n = np.empty(max(capacity, 1024), dtype), 0

    def append(self, values: np.ndarray) -> None:
        end = self.n + len(values)
        if end > len(self.buf):
            grown = np.empty(max(end, len(self.buf) * 3 // 2), self.buf.dtype)
            grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        self.buf[self.n:end] = values
        self.n = end

    def values(self) -> np.ndarray:
        """The filled part, the buffer shrunk to it in place (realloc: no second copy)."""
        self.buf.resize(self.n, refcheck=False)
        return self.buf


def assemble(chunks: Iterable[tuple[pd.DataFrame, np.ndarray]], *, to_roles: Callable[[pd.DataFrame], pd.DataFrame],
             file: str, dedup: str, timestamps: str = "seconds", behaviors: tuple[str, ...] | None = None,
             name: str = "", source: str = "", meta: dict | None = None, items: pd.DataFrame | None = None,
             expected_rows: int = 0, **checks) -> Interactions:
    """Interactions from parsed chunks: `to_roles(frame)` picks and names the role columns of a
    chunk; `checks` are `validate_frame`'s (int_ids, rating_range, columns, …); `dedup` and
    `timestamps` as there; `expected_rows` sizes the columns up front (an estimate). Every message
    names the file line, as a whole-file read would."""
    users, items_, kinds = _IdMap(), _IdMap(), _IdMap()
    dtypes = {"user": np.int32, "item": np.int32, "rating": np.float32, "timestamp": np.float64,
              "behavior": np.int32}
    cols: dict[str, _Column] = {}
    lines = _Lines()
    dates: dict[bool, int] = {}  # whether timestamps were dates → the first line of a chunk that said so
    column_name = (checks.get("columns") or {}).get("timestamp", "timestamp")
    for raw, line_of in chunks:
        frame = to_roles(raw)
        del raw
        df, _ = validate_with_lines(frame, file=file, line_of=line_of, timestamps=timestamps, dedup="keep",
                                    defer_timestamps=True, **checks)
        del frame
        values = {"user": users.encode(df["user"]), "item": items_.encode(df["item"])}
        lines.add(line_of)
        if "rating" in df:
            values["rating"] = df["rating"].to_numpy(np.float32)
        if "timestamp" in df:
            values["timestamp"] = df["timestamp"].to_numpy(np.float64)
            dates.setdefault(bool(df.attrs["timestamp_dates"]), int(line_of[0]))
        if "behavior" in df:
            values["behavior"] = kinds.encode(df["behavior"])
        for key, v in values.items():
            cols.setdefault(key, _Column(dtypes[key], expected_rows)).append(v)
        del df, values
        if len(lines.starts) % 8 == 0:  # pandas frames hold reference cycles: collect their memory as we go
            gc.collect()
    _give_back_free_memory()
    if len(dates) > 1:
        raise DataError("the timestamps are numbers on some lines and dates on others", file=file,
                        row=max(dates.values()), column=column_name,
                        fix="write every timestamp one way: Unix seconds, or dates like 2017-11-25 14:03:00")
    take = lambda key: cols.pop(key).values() if key in cols else None  # noqa: E731 — frees each buffer
    line_of = lines
    user_ids, user = _final(users, take("user"))
    item_ids, item = _final(items_, take("item"))
    timestamp = take("timestamp")
    if timestamp is not None:
        timestamp = finish_timestamps(timestamp, dates=True in dates, auto=timestamps == "auto", file=file,
                                      line_of=line_of, column=column_name, inplace=True)
    behavior, names = take("behavior"), ()
    if behavior is not None:  # named as `Interactions.from_frame` names them: given, else sorted
        seen = kinds.index.to_numpy(dtype=object)
        names = tuple(behaviors) if behaviors else tuple(sorted(str(k) for k in seen))
        behavior = pd.Index(names).get_indexer(seen).astype(np.int8)[behavior]
    arrays = {"user": user, "item": item, "rating": take("rating"), "timestamp": timestamp, "behavior": behavior}
    kept = _dedup(arrays, line_of, dedup=dedup, file=file, ids={"user": user_ids, "item": item_ids, "behavior": names})
    meta = dict(meta or {})
    if kept is not None:
        meta["duplicates_dropped"] = int(len(user) - len(kept))
        arrays = {k: None if a is None else a[kept] for k, a in arrays.items()}
    return Interactions.from_codes(arrays["user"], arrays["item"], user_ids, item_ids, rating=arrays["rating"],
                                   timestamp=arrays["timestamp"], behavior=arrays["behavior"], behaviors=names,
                                   items=items, name=name, source=source, meta=meta)


def _give_back_free_memory() -> None:
    """Collect the chunks' frames (pandas objects hold reference cycles) and return the heap they
    leave free to the system (glibc keeps it otherwise, and the whole-column steps that follow
    would come on top of it). Trimming is a no-op off glibc."""
    gc.collect()
    try:
        import pyarrow  # pandas keeps text in Arrow memory, whose pool holds on to it

        pyarrow.default_memory_pool().release_unused()
    except ImportError:
        pass
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _final(ids: _IdMap, provisional: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw, final = ids.finish()
    return raw, final.astype(np.int64)[provisional]


def _dedup(arrays: dict, line_of: _Lines, *, dedup: str, file: str, ids: dict) -> np.ndarray | None:
    """The duplicate rule on codes (as `validate.apply_dedup` on text): None to keep every row,
    else the sorted positions kept; 'error' raises naming both lines of the first repeat."""
    user, item, behavior = arrays["user"], arrays["item"], arrays["behavior"]
    if dedup == "keep" or len(user) < 2:
        return None
    names = ["user", "item"] + (["behavior"] if behavior is not None else [])
    if dedup == "error":
        key = _key(user, item, behavior)
        key.sort()  # in place: the common case, no repeat, needs no order array
        if not (key[1:] == key[:-1]).any():
            return None
        del key
        key = _key(user, item, behavior)
        order = np.argsort(key, kind="stable")
        same = key[order[1:]] == key[order[:-1]]
        k2 = int(order[1:][same].min())  # the first line that repeats an earlier one
        k1 = int(np.flatnonzero(key == key[k2])[0])
        what = ", ".join(f"{n} {str(ids[n][arrays[n][k2]])!r}" for n in names)
        raise DataError(f"duplicate row: lines {int(line_of[k1])} and {int(line_of[k2])} have the same "
                        f"{'/'.join(names)} ({what}); {int(same.sum()):,} repeated row(s) in all",
                        file=file, row=int(line_of[k2]), fix=DEDUP_FIX)
    key = _key(user, item, behavior)
    pos = np.arange(len(key))
    ts = arrays["timestamp"]
    order = np.lexsort((pos, ts)) if ts is not None else pos
    ordered = key[order]
    if dedup == "last":
        _, first = np.unique(ordered[::-1], return_index=True)
        kept = order[::-1][first]
    else:
        _, first = np.unique(ordered, return_index=True)
        kept = order[first]
    return None if len(kept) == len(key) else np.sort(kept)


def _key(user: np.ndarray, item: np.ndarray, behavior: np.ndarray | None) -> np.ndarray:
    """One int64 per (user, item[, behaviour]) combination."""
    key = user * (int(item.max()) + 1) + item
    return key if behavior is None else key * (int(behavior.max()) + 1) + behavior
