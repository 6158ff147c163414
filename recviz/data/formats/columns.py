"""The columns a chunked read fills (`recviz.data.formats.chunked`): each takes a chunk's values
as they come and keeps them compact — ids as codes (`Ids`: integers through a lookup table over
their range, text merged into the known ids in amortized batches), behaviours as small codes,
file lines as run-length blocks, an item attribute by its last line — so that memory is of the
order of the arrays they become and time linear in the rows.
"""

from __future__ import annotations

import bisect

import numpy as np
import pandas as pd

from recviz.data.arrays import unique
from recviz.data.interactions import encode_ids
from recviz.errors import DataError

BLOCK = 1 << 20  # rows per step of a whole-column pass: temporaries stay a few MB
_POW10 = np.array([10 ** k for k in range(1, 19)], dtype=np.int64)


def blocks(n: int):
    return ((s, min(s + BLOCK, n)) for s in range(0, n, BLOCK))


class Column:
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


class Texts:
    """Distinct text ids → codes in order of first appearance, grown chunk by chunk in linear time.

    A chunk's distinct ids are looked up in the known ones (`known`, a pandas Index whose hash
    table is built once per merge); ids not found there get provisional codes in `pending` (the
    concatenation of the chunks' new ids, duplicates across chunks included). When `pending`
    outgrows `known`, the two are merged by one factorize and the rows that hold pending codes are
    renumbered; so every id is hashed a bounded number of times, and memory stays a small multiple
    of the distinct ids (as Arrow strings, never one Python object per row)."""

    def __init__(self, column: Column, start: int = 0):
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
        for s, e in blocks(len(rows)):
            rows[s:e] = codes[rows[s:e]]
        self.known = pd.Index(uniques, dtype="str")
        self.pending, self.n_pending, self.pending_from = [], 0, self.column.n

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw ids in their final order, int64 final code of each row)."""
        self._merge()
        ids, rank = encode_ids(pd.Series(self.known))
        return ids, lookup(rank, self.column.values())


def lookup(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """int64 `table[codes]`, a block at a time (codes may be int32 or int64; int64 is reused)."""
    out = codes if codes.dtype == np.int64 else np.empty(len(codes), np.int64)
    for s, e in blocks(len(codes)):
        out[s:e] = table[codes[s:e]]
    return out


class Ids:
    """The user (or item) ids of a table, chunk by chunk.

    While every id is an integer written the plain way ("42", never "042", "+42" or "42.0") — the
    usual case, and always for an integer Parquet or DataFrame column — the column holds the
    integers themselves and the map to contiguous codes is made once at the end (a lookup table
    over their range, or a sort when the range is much wider than the rows). The first id that is
    not such an integer turns the column into text codes (`Texts`), converting the rows read so
    far once. Either way the result is what `encode_ids` gives on the whole column."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.ints: Column | None = Column(np.int64, capacity)
        self.texts: Texts | None = None

    def add(self, col: pd.Series) -> None:
        if self.ints is not None:
            values = plain_integers(col)
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
        column = Column(np.int32, max(self.capacity, len(done)))
        self.texts = Texts(column)
        if len(done):
            known = unique(done)
            for s, e in blocks(len(done)):
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
            for s, e in blocks(len(raw)):
                present[raw[s:e] - lo] = True
            code_of = np.cumsum(present, dtype=np.int64) - 1
            known = np.flatnonzero(present) + lo
            del present
            for s, e in blocks(len(raw)):
                raw[s:e] = code_of[raw[s:e] - lo]
        else:
            known = unique(raw)
            for s, e in blocks(len(raw)):
                raw[s:e] = np.searchsorted(known, raw[s:e])
        width = max(len(str(int(known[0]))), len(str(int(known[-1]))))
        return known.astype(f"<U{width}"), raw


def plain_integers(col: pd.Series) -> np.ndarray | None:
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


class Kinds:
    """Behaviour names → int16 codes in order of first appearance (a table has a handful)."""

    def __init__(self, capacity: int):
        self.column = Column(np.int16, capacity)
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


class Lines:
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


class Attribute:
    """A per-item text column (Taobao's category): the value on each item's last line, as int32
    codes per row while reading (-1: empty) and one value per item at the end."""

    def __init__(self, capacity: int):
        self.column = Column(np.int32, capacity)
        self.texts = Texts(Column(np.int32, 0))

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
        for s, e in blocks(len(item)):
            items_rev = item[s:e][::-1]
            uniq, first = np.unique(items_rev, return_index=True)  # the block's last row of each item
            last[uniq] = values[s:e][::-1][first]
        names = np.append(self.texts.known.to_numpy(dtype=object), np.nan)
        return pd.Series(names[last], dtype=object)
