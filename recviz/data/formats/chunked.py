"""Interactions from a table read chunk by chunk — every reader's one way in — so that reading
(and saving) a log takes memory of the order of the arrays it becomes, not of its text, and time
linear in its rows.

Why: parsed whole, every cell of a table is a Python string (~60 bytes), so a 600 MB CSV took
6.6 GB, and a 20M-row Parquet log 11 times its arrays. Here each chunk (a text file's
`recviz.data.formats.delimited.iter_delimited`, a Parquet file's row group, a slice of a
DataFrame) is validated on its own, exactly as a whole frame would be (`validate.validate_with_lines`),
and turned at once into compact columns: ids through `_Ids`, ratings float32, timestamps the
float64 values as written, behaviours small codes. Only what needs the whole column waits for the
end, and then works on those arrays in place or a block at a time: the ids' final order (the one
`Interactions.from_frame` gives), the timestamps' unit (decided from all values), and the duplicate rule.

Memory, per row, while reading: 8 bytes per integer id (4 per text id), 4 per rating, 8 per
timestamp, 2 per behaviour, plus one chunk's frame; the duplicate rule then needs about 24 bytes a
row more for a moment (a sort). Time is linear in the rows: no step redoes the work of earlier
chunks.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from recviz.data.arrays import argsort_ints, sort_ints
from recviz.data.formats.columns import Attribute, Column, Ids, Kinds, Lines
from recviz.data.interactions import Interactions
from recviz.data.timestamps import finish_timestamps
from recviz.data.validate import DEDUP_FIX, check_scale, validate_with_lines
from recviz.errors import DataError


@dataclass
class Assembled:
    """What `assemble_columns` makes of a table: final columns and ids, and where each row was."""

    user: np.ndarray
    item: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    rating: np.ndarray | None
    timestamp: np.ndarray | None
    behavior: np.ndarray | None
    behaviors: tuple[str, ...]
    meta: dict
    lines: object  # `lines[k]`: the file line of row k before the duplicate rule
    kept: np.ndarray | None  # rows the duplicate rule kept (None: every row)
    item_attribute: pd.Series | None = None  # by item code
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.user)

    def line(self, k: int) -> int:
        """The file line of row `k` of the result."""
        return self.lines[k if self.kept is None else int(self.kept[k])]


def assemble(chunks: Iterable[tuple[pd.DataFrame, np.ndarray]], *, name: str = "", source: str = "",
             meta: dict | None = None, items: pd.DataFrame | Callable[[], pd.DataFrame | None] | None = None,
             item_column: str | None = None, **options) -> Interactions:
    """Interactions from parsed chunks (see `assemble_columns` for the options). `items` is an
    item table by raw id as `Interactions.from_codes` takes it (or a function reading it, called
    after the interactions, so that their problems are reported first); `item_column` names a
    column of the chunks (not a role) whose value on each item's last line becomes the item
    table's `genres`."""
    got = assemble_columns(chunks, item_column=item_column, **options)
    if callable(items):
        items = items()
    if item_column is not None:
        items = pd.DataFrame({"genres": got.item_attribute.to_numpy()}, index=pd.Index(got.item_ids))
    return Interactions.from_codes(got.user, got.item, got.user_ids, got.item_ids, rating=got.rating,
                                   timestamp=got.timestamp, behavior=got.behavior, behaviors=got.behaviors,
                                   items=items, name=name, source=source, meta={**(meta or {}), **got.meta})


def assemble_columns(chunks: Iterable[tuple[pd.DataFrame, np.ndarray]], *,
                     to_roles: Callable[[pd.DataFrame], pd.DataFrame], file: str, dedup: str,
                     timestamps: str = "seconds", behaviors: tuple[str, ...] | None = None,
                     rating_scale: Callable[[np.ndarray], tuple[tuple[float, float], float | None]] | None = None,
                     item_column: str | None = None, dup_keys: tuple[str, ...] | None = None,
                     expected_rows: int = 0, **checks) -> Assembled:
    """Columns from parsed chunks: `to_roles(frame)` picks and names the role columns of a chunk
    (and `item_column`, if any); `checks` are `validate_frame`'s (int_ids, rating_range, columns,
    …), `behaviors` the allowed behaviour names (also their order; else sorted); `dedup` and
    `timestamps` as there; `rating_scale(ratings)` → (range, step) is a format's scale for a chunk's
    ratings (float64), for a format that decides it from the values (MovieLens 1M/10M: whole stars,
    or half stars once a half has been seen); `dup_keys` the
    duplicate rule's key columns (default user, item and behaviour when there is one);
    `expected_rows` sizes the columns up front (an estimate). Every message names the file line,
    as a whole-file read would."""
    cap = int(expected_rows)
    users, items_ = Ids(cap), Ids(cap)
    kinds = Kinds(cap)
    attribute = Attribute(cap) if item_column is not None else None
    cols: dict[str, Column] = {}
    lines = Lines()
    dates: dict[bool, int] = {}  # whether timestamps were dates → the first line of a chunk that said so
    column_name = (checks.get("columns") or {}).get("timestamp", "timestamp")
    for raw, line_of in chunks:
        frame = to_roles(raw)
        del raw
        df, _ = validate_with_lines(frame, file=file, line_of=line_of, timestamps=timestamps, dedup="keep",
                                    defer_timestamps=True, keep_int_ids=True, behaviors=behaviors, **checks)
        if attribute is not None:
            attribute.add(frame[item_column])
        del frame
        users.add(df["user"])
        items_.add(df["item"])
        lines.add(line_of)
        if "rating" in df:
            rating = df["rating"].to_numpy(np.float64)
            if rating_scale is not None:
                check_scale(rating, *rating_scale(rating), file=file, line_of=line_of,
                            column=(checks.get("columns") or {}).get("rating", "rating"))
            cols.setdefault("rating", Column(np.float32, cap)).append(rating.astype(np.float32))
            del rating
        if "timestamp" in df:
            cols.setdefault("timestamp", Column(np.float64, cap)).append(df["timestamp"].to_numpy(np.float64))
            dates.setdefault(bool(df.attrs["timestamp_dates"]), int(line_of[0]))
        if "behavior" in df:
            kinds.add(df["behavior"])
        del df
        if len(lines.starts) % 8 == 0:  # pandas frames hold reference cycles: collect their memory as we go
            gc.collect()
    _give_back_free_memory()
    if len(dates) > 1:
        raise DataError("the timestamps are numbers on some lines and dates on others", file=file,
                        row=max(dates.values()), column=column_name,
                        fix="write every timestamp one way: Unix seconds, or dates like 2017-11-25 14:03:00")
    take = lambda key: cols.pop(key).values() if key in cols else None  # noqa: E731 — frees each buffer
    rating = take("rating")
    timestamp = take("timestamp")
    if timestamp is not None:
        timestamp = finish_timestamps(timestamp, dates=True in dates, auto=timestamps == "auto", file=file,
                                      line_of=lines, column=column_name, inplace=True)
    user_ids, user = users.finish()
    item_ids, item = items_.finish()
    behavior, names = None, ()
    if kinds.names:  # named as `Interactions.from_frame` names them: given, else sorted
        names = tuple(behaviors) if behaviors else tuple(sorted(kinds.names))
        code_of = pd.Index(names).get_indexer(kinds.names).astype(np.int8)
        provisional = kinds.column.values()
        behavior = code_of[provisional]
        del provisional
    item_attribute = attribute.per_item(item, len(item_ids)) if attribute is not None else None
    arrays = {"user": user, "item": item, "rating": rating, "timestamp": timestamp, "behavior": behavior}
    del user, item, rating, timestamp, behavior
    keys = tuple(dup_keys) if dup_keys else ("user", "item", "behavior")
    kept = _dedup(arrays, lines, dedup=dedup, file=file, keys=tuple(k for k in keys if arrays.get(k) is not None),
                  ids={"user": user_ids, "item": item_ids, "behavior": names})
    meta = {}
    if kept is not None:
        meta["duplicates_dropped"] = int(len(arrays["user"]) - len(kept))
        for key in arrays:  # one column at a time: the old one is freed as the new one is made
            if arrays[key] is not None:
                arrays[key] = arrays[key][kept]
    return Assembled(arrays["user"], arrays["item"], user_ids, item_ids, arrays["rating"], arrays["timestamp"],
                     arrays["behavior"], names, meta, lines, kept, item_attribute)


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


def _dedup(arrays: dict, lines, *, dedup: str, file: str, keys: tuple[str, ...], ids: dict) -> np.ndarray | None:
    """The duplicate rule on codes (as `validate.apply_dedup` on text): None to keep every row,
    else the sorted positions kept; 'error' raises naming both lines of the first repeat. 'last'
    keeps each key's row with the latest timestamp (the later row on ties), 'first' the earliest
    (the earlier row on ties): one stable sort by (key, time) gives both."""
    n = len(arrays["user"])
    if dedup == "keep" or n < 2:
        return None
    if dedup == "error":
        key = _key(arrays, keys)
        key = sort_ints(key, overwrite=True)  # the common case, no repeat, needs no order array
        if not (key[1:] == key[:-1]).any():
            return None
        del key
        key = _key(arrays, keys)
        order = argsort_ints(key)
        same = key[order[1:]] == key[order[:-1]]
        k2 = int(order[1:][same].min())  # the first line that repeats an earlier one
        k1 = int(np.flatnonzero(key == key[k2])[0])
        what = ", ".join(f"{k} {str(ids[k][arrays[k][k2]])!r}" for k in keys)
        raise DataError(f"duplicate row: lines {int(lines[k1])} and {int(lines[k2])} have the same "
                        f"{'/'.join(keys)} ({what}); {int(same.sum()):,} repeated row(s) in all",
                        file=file, row=int(lines[k2]), fix=DEDUP_FIX)
    key = _key(arrays, keys)
    order = _by_key_then_time(key, arrays["timestamp"])  # then row order; `key` is sorted in place
    last = np.empty(n, bool)
    np.not_equal(key[1:], key[:-1], out=last[:-1])
    last[-1] = True
    del key
    if last.all():
        return None
    if dedup == "last":
        kept = order[last]
    else:  # the first of each run of equal keys: the row after each last one
        first = np.empty(n, bool)
        first[0] = True
        first[1:] = last[:-1]
        kept = order[first]
    del order, last
    return sort_ints(kept, overwrite=True)


def _by_key_then_time(key: np.ndarray, ts: np.ndarray | None) -> np.ndarray:
    """Row positions ordered by (key, time, row), leaving `key` sorted in place. One stable radix
    sort (`arrays.argsort_ints`) of one uint64 (key × time span + time offset) where that fits
    in 64 bits — user × item × behaviour keys and 9 days of seconds do at 100M rows — else
    np.lexsort. Both sort the same; the combined key saves the second sort and its buffers."""
    if ts is None or not len(key):
        return argsort_ints(key, overwrite=True)
    lo = int(ts.min()) if ts.dtype.kind in "iu" else 0
    span = int(ts.max()) - lo + 1 if ts.dtype.kind in "iu" else 0
    if not span or (int(key.max()) + 1) * span > 2**64:
        order = np.lexsort((ts, key))
        key[:] = key[order]
        return order
    combined = key.view(np.uint64)  # the same non-negative values, one bit more room
    combined *= np.uint64(span)
    combined += np.subtract(ts, lo, dtype=np.int64).view(np.uint64)
    order = argsort_ints(combined, overwrite=True)
    combined //= np.uint64(span)  # back to the keys, now sorted
    return order


def _key(arrays: dict, keys: tuple[str, ...]) -> np.ndarray:
    """One int64 per combination of the `keys` columns (codes: user × item × behaviour fits)."""
    key, size = np.zeros(len(arrays["user"]), np.int64), 1
    for k in keys:
        a = arrays[k]
        n = int(a.max()) + 1 if len(a) else 1
        size *= n
        if size >= 2 ** 63:
            raise DataError("too many distinct users × items to find duplicate rows",
                            fix="pass dedup='keep' and remove repeated rows before loading")
        key *= n
        key += a
    return key
