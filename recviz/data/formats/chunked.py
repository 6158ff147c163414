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

import bisect
import gc
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from recviz.data.arrays import unique
from recviz.data.interactions import Interactions, encode_ids
from recviz.data.timestamps import finish_timestamps
from recviz.data.validate import DEDUP_FIX, check_scale, validate_with_lines
from recviz.errors import DataError

_BLOCK = 1 << 20  # rows per step of a whole-column pass: temporaries stay a few MB
_POW10 = np.array([10 ** k for k in range(1, 19)], dtype=np.int64)


def _blocks(n: int):
    return ((s, min(s + _BLOCK, n)) for s in range(0, n, _BLOCK))


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

    def filled(self) -> np.ndarray:
        return self.buf[:self.n]

    def values(self) -> np.ndarray:
        """The filled part, the buffer shrunk to it in place (realloc: no second copy)."""
        self.buf.resize(self.n, refcheck=False)
        return self.buf


class _Texts:
    """Distinct text ids → codes in order of first appearance, grown chunk by chunk in linear time.

    A chunk's distinct ids are looked up in the known ones (`known`, a pandas Index whose hash
    table is built once per merge); ids not found there get provisional codes in `pending` (the
    concatenation of the chunks' new ids, duplicates across chunks included). When `pending`
    outgrows `known`, the two are merged by one factorize and the rows that hold pending codes are
    renumbered; so every id is hashed a bounded number of times, and memory stays a small multiple
    of the distinct ids (as Arrow strings, never one Python object per row)."""

    def __init__(self, column: _Column, start: int = 0):
        self.column = column  # int32 codes; rows from `self.pending_from` on hold pending codes
        self.known = pd.Index([], dtype="str")
        self.pending: list[pd.Index] = []
        self.n_pending = 0
        self.pending_from = start

    def encode(self, codes: np.ndarray, uniques: pd.Index) -> None:
        """Append one chunk: `uniques[codes]` are its ids (a factorization of the chunk)."""
        pos = self.known.get_indexer(uniques) if len(self.known) else np.full(len(uniques), -1, np.int64)
        new = pos < 0
        if new.any():
            pos[new] = len(self.known) + self.n_pending + np.arange(int(new.sum()))
            self.pending.append(uniques[new])
            self.n_pending += int(new.sum())
        if len(pos) and int(pos.max()) >= np.iinfo(np.int32).max:
            raise DataError("more than 2 billion distinct ids", fix="sample the data first")
        self.column.append(pos.astype(np.int32)[codes])
        if self.n_pending > max(1 << 16, len(self.known)):
            self._merge()

    def _merge(self) -> None:
        if not self.pending:
            return
        every = self.known.append(self.pending) if len(self.known) else self.pending[0].append(self.pending[1:])
        codes, uniques = pd.factorize(every, sort=False)  # `known` comes first and keeps its codes
        rows = self.column.filled()[self.pending_from:]
        for s, e in _blocks(len(rows)):
            rows[s:e] = codes[rows[s:e]]
        self.known = pd.Index(uniques, dtype="str")
        self.pending, self.n_pending, self.pending_from = [], 0, self.column.n

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw ids in their final order, int64 final code of each row)."""
        self._merge()
        ids, rank = encode_ids(pd.Series(self.known))
        return ids, _lookup(rank, self.column.values())


def _lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """int64 `table[codes]`, a block at a time (codes may be int32 or int64; int64 is reused)."""
    out = codes if codes.dtype == np.int64 else np.empty(len(codes), np.int64)
    for s, e in _blocks(len(codes)):
        out[s:e] = table[codes[s:e]]
    return out


class _Ids:
    """The user (or item) ids of a table, chunk by chunk.

    While every id is an integer written the plain way ("42", never "042", "+42" or "42.0") — the
    usual case, and always for an integer Parquet or DataFrame column — the column holds the
    integers themselves and the map to contiguous codes is made once at the end (a lookup table
    over their range, or a sort when the range is much wider than the rows). The first id that is
    not such an integer turns the column into text codes (`_Texts`), converting the rows read so
    far once. Either way the result is what `encode_ids` gives on the whole column."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.ints: _Column | None = _Column(np.int64, capacity)
        self.texts: _Texts | None = None

    def add(self, col: pd.Series) -> None:
        if self.ints is not None:
            values = _plain_integers(col)
            if values is not None:
                self.ints.append(values)
                return
            self._to_texts()
        if pd.api.types.is_integer_dtype(col.dtype):
            codes, uniques = pd.factorize(col.to_numpy(), sort=False)
            uniques = pd.Index(uniques.astype(str), dtype="str")
        else:
            codes, uniques = pd.factorize(col.astype("str"), sort=False)
            uniques = pd.Index(uniques, dtype="str")
        self.texts.encode(codes, uniques)

    def _to_texts(self) -> None:
        done = self.ints.values()
        self.ints = None
        column = _Column(np.int32, max(self.capacity, len(done)))
        self.texts = _Texts(column)
        if len(done):
            known = unique(done)
            for s, e in _blocks(len(done)):
                column.append(np.searchsorted(known, done[s:e]).astype(np.int32))
            self.texts.known = pd.Index(known.astype(str), dtype="str")
            self.texts.pending_from = column.n
        del done

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw ids in their final order, as text; int64 code of each row)."""
        if self.texts is not None:
            return self.texts.finish()
        raw = self.ints.values()
        self.ints = None
        if not len(raw):
            return np.array([], dtype=str), raw
        lo, hi = int(raw.min()), int(raw.max())
        if hi - lo < max(4 * len(raw), 1 << 20):  # a lookup table over the range: no sort
            present = np.zeros(hi - lo + 1, bool)
            for s, e in _blocks(len(raw)):
                present[raw[s:e] - lo] = True
            code_of = np.cumsum(present, dtype=np.int64) - 1
            known = np.flatnonzero(present) + lo
            del present
            for s, e in _blocks(len(raw)):
                raw[s:e] = code_of[raw[s:e] - lo]
        else:
            known = unique(raw)
            for s, e in _blocks(len(raw)):
                raw[s:e] = np.searchsorted(known, raw[s:e])
        width = max(len(str(int(known[0]))), len(str(int(known[-1]))))
        return known.astype(f"<U{width}"), raw


def _plain_integers(col: pd.Series) -> np.ndarray | None:
    """The ids as int64 when each is an integer written the plain way, else None."""
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return None  # validation turns whole floats into integers; anything else stays text
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        text = pa.array(col.astype("str"))
        values = pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError):
        return None
    # written the plain way: as many characters as the number has digits (and its sign)
    width = 1 + np.searchsorted(_POW10, np.abs(values), side="right") + (values < 0)
    if (values == np.iinfo(np.int64).min).any() or (pc.utf8_length(text).to_numpy(zero_copy_only=False) != width).any():
        return None
    return values


class _Kinds:
    """Behaviour names → int16 codes in order of first appearance (a table has a handful)."""

    def __init__(self, capacity: int):
        self.column = _Column(np.int16, capacity)
        self.names: list[str] = []

    def add(self, col: pd.Series) -> None:
        codes, uniques = pd.factorize(col.astype("str"), sort=False)
        known = {name: k for k, name in enumerate(self.names)}
        pos = np.array([known.setdefault(str(u), len(known)) for u in uniques], dtype=np.int64)
        self.names = list(known)
        if len(self.names) > 127:
            raise DataError(f"the behaviour column has more than 127 different values ({self.names[:5]}, …)",
                            fix="map the behaviour role to a column of a few kinds (click, cart, buy, …)")
        self.column.append(pos.astype(np.int16)[codes])


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


class _Attribute:
    """A per-item text column (Taobao's category): the value on each item's last line, as int32
    codes per row while reading (-1: empty) and one value per item at the end."""

    def __init__(self, capacity: int):
        self.column = _Column(np.int32, capacity)
        self.texts = _Texts(_Column(np.int32, 0))

    def add(self, col: pd.Series) -> None:
        text = col.astype("str").str.strip()
        codes, uniques = pd.factorize(text.where(text != "nan"), sort=False)  # empty cells: code -1
        codes = np.asarray(codes, dtype=np.int64)
        texts = self.texts
        pos = texts.known.get_indexer(pd.Index(uniques, dtype="str")) if len(texts.known) else np.full(len(uniques), -1)
        new = pos < 0
        if new.any():
            texts.known = texts.known.append(pd.Index(uniques[new], dtype="str"))  # few distinct values
            pos[new] = len(texts.known) - int(new.sum()) + np.arange(int(new.sum()))
        self.column.append(np.where(codes >= 0, np.append(pos, -1)[codes], -1).astype(np.int32))

    def per_item(self, item: np.ndarray, n_items: int) -> pd.Series:
        """The value on each item's last line (NaN where it was empty), indexed by item code."""
        values = self.column.values()
        last = np.full(n_items, -1, np.int32)
        for s, e in _blocks(len(item)):
            items_rev = item[s:e][::-1]
            uniq, first = np.unique(items_rev, return_index=True)  # the block's last row of each item
            last[uniq] = values[s:e][::-1][first]
        names = np.append(self.texts.known.to_numpy(dtype=object), np.nan)
        return pd.Series(names[last], dtype=object)


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
    users, items_ = _Ids(cap), _Ids(cap)
    kinds = _Kinds(cap)
    attribute = _Attribute(cap) if item_column is not None else None
    cols: dict[str, _Column] = {}
    dtypes = {"rating": np.float32, "timestamp": np.float64}
    lines = _Lines()
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
            cols.setdefault("rating", _Column(np.float32, cap)).append(rating.astype(np.float32))
            del rating
        if "timestamp" in df:
            cols.setdefault("timestamp", _Column(np.float64, cap)).append(df["timestamp"].to_numpy(np.float64))
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
        key.sort()  # in place: the common case, no repeat, needs no order array
        if not (key[1:] == key[:-1]).any():
            return None
        del key
        key = _key(arrays, keys)
        order = np.argsort(key, kind="stable")
        same = key[order[1:]] == key[order[:-1]]
        k2 = int(order[1:][same].min())  # the first line that repeats an earlier one
        k1 = int(np.flatnonzero(key == key[k2])[0])
        what = ", ".join(f"{k} {str(ids[k][arrays[k][k2]])!r}" for k in keys)
        raise DataError(f"duplicate row: lines {int(lines[k1])} and {int(lines[k2])} have the same "
                        f"{'/'.join(keys)} ({what}); {int(same.sum()):,} repeated row(s) in all",
                        file=file, row=int(lines[k2]), fix=DEDUP_FIX)
    key = _key(arrays, keys)
    ts = arrays["timestamp"]
    order = np.lexsort((ts, key)) if ts is not None else np.argsort(key, kind="stable")  # then row order
    key = key[order]  # now sorted; the unsorted keys are freed
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
    kept.sort()
    return kept


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
