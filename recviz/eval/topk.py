"""The first k of score rows — best score first, ties in a seeded permutation's order — for every
top-N list RecViz makes (`protocols.recommend`: evaluation, stored lists, a list made on demand).

A list made while a page reruns should cost that user's work, not fresh catalogue-sized buffers:
on this VM fresh memory is backed at ~10 µs per 4 KB page, so at 4M items each fresh int64 array
of the catalogue (the tie permutation, its rank, the keys) cost ~80 ms before any arithmetic.
So the seeded tie order is made once per (seed, n_items) and kept read-only (`tie_low`, a small
LRU cache), and the keys are built in scratch kept per thread (`_scratch`): Streamlit reruns run on
several threads, and no thread ever writes into another's scratch. What stays per call is O(k) a
row, plus the scorer's own score rows.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import torch

# (seed, n_items) tie orders kept: a run's page and its evaluation use one; 4M items are 32 MB each.
TIE_ORDERS_KEPT = 2


@functools.lru_cache(maxsize=TIE_ORDERS_KEPT)
def tie_low(seed: int, n_items: int) -> np.ndarray:
    """`n − 1 − tie_rank` (int64 [n_items], read-only) of the seeded tie order (tie_perm =
    default_rng(seed).permutation(n_items), tie_rank[tie_perm] = 0, 1, ...): the low half of
    `TopK`'s keys. Cached, so shared between threads, hence read-only."""
    perm = np.random.default_rng(seed).permutation(n_items)
    low = np.empty(n_items, np.int64)
    low[perm] = np.arange(n_items - 1, -1, -1)
    low.flags.writeable = False
    return low


def _order_bits(src: np.ndarray, out: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Float32 bits (`src` viewed as int32) made into int32 that order as the floats do, into
    `out` (`mask`: bool scratch of its shape): ≥ 0 keeps its bits; below 0, every bit but the sign
    flipped reverses them; −0.0 (flipped to −1) is read as +0.0 (equal scores, equal keys)."""
    np.right_shift(src, 31, out=out)
    np.bitwise_and(out, 0x7FFFFFFF, out=out)
    np.bitwise_xor(out, src, out=out)
    np.copyto(out, 0, where=np.equal(out, -1, out=mask))
    return out


NEG_INF_BITS = int(_order_bits(np.array([-np.inf], np.float32).view(np.int32), np.empty(1, np.int32),
                               np.empty(1, bool))[0])

_scratch = threading.local()  # per thread: (bits int32, key int64, mask bool), flat, grown as needed


def _buffers(rows: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's scratch shaped [rows, n]: grown when a bigger block comes, else reused, so a
    thread keeps at most its largest block's (13 bytes a cell; `recommend`'s blocks are at most
    SCORE_CELLS cells, ~52 MB)."""
    cells = rows * n
    have = getattr(_scratch, "buffers", None)
    if have is None or len(have[0]) < cells:
        have = (np.empty(cells, np.int32), np.empty(cells, np.int64), np.empty(cells, bool))
        _scratch.buffers = have
    return tuple(b[:cells].reshape(rows, n) for b in have)


# Keys sampled per block to find a threshold under each row's k largest (`_largest`), for blocks of
# at most SAMPLED_ROWS rows (a page's list made on demand); bigger blocks (evaluation) sample too
# sparsely per row to pay — ~1/16 of a row would be sorted — and use torch.topk.
SAMPLE_CELLS = 1 << 16
SAMPLED_ROWS = 8


def _largest(key: np.ndarray, mask: np.ndarray, k: int) -> np.ndarray:
    """Positions of each row's k largest keys, largest first (keys distinct within a row).

    `torch.topk` keeps a (key, position) queue of the whole row, fresh each call: 64 MB of new
    pages a row at 4M items. Instead a strided sample of each row (≤ SAMPLE_CELLS a block, a few
    hundred KB; blocks of up to SAMPLED_ROWS rows) gives a threshold, its k-th largest: the sample's k keys are in the row, so every
    row has at least k keys at or above it, its k largest among them. Only those candidates
    (~k × row / sample a row) are sorted. Catalogues too small to sample use `torch.topk`."""
    rows, n = key.shape
    width = max(16 * k, SAMPLE_CELLS // rows)
    step = n // width
    if step <= 1 or rows > SAMPLED_ROWS:
        return torch.topk(torch.from_numpy(key), k, dim=1, largest=True, sorted=True).indices.numpy()
    sample = np.partition(key[:, ::step], -k, axis=1)  # a copy of the sample only
    np.greater_equal(key, sample[:, -k, None], out=mask)
    del sample
    row, col = np.nonzero(mask)
    order = np.lexsort((~key[row, col], row))  # by row, then key, largest first (~ reverses, no overflow)
    counts = np.bincount(row, minlength=rows)
    first = np.cumsum(counts) - counts
    return col[order[(first[:, None] + np.arange(k)).ravel()]].reshape(rows, k)


class TopK:
    """The first k of each row's ranking — best score first, ties in the permutation's order
    (tie_rank[tie_perm] = 0, 1, ...) — for blocks of score rows, in O(items) a row.

    Each (score, item) becomes one int64 key that orders as the ranking does: the score's float32
    bits made order-preserving as an int32 in the high half, `n − 1 − tie_rank` in the low half.
    The k largest keys, in order, are the ranking's first k — ties anywhere, at the cut included,
    broken by the permutation — so one `torch.topk` over the keys gives the lists. The keys are
    built in the thread's scratch (`_buffers`). ~2.7 ms a row of 527k items, against ~20 ms for the
    numpy partition, argpartition and masked key this replaced (measured on a busy machine)."""

    def __init__(self, tie_rank: np.ndarray | None, k: int, low: np.ndarray | None = None):
        """`tie_rank` (int [n]), or `low` (`tie_low`'s array; then `tie_rank` is not read)."""
        if low is None:
            low = (len(tie_rank) - 1 - np.asarray(tie_rank)).astype(np.int64)
        n = len(low)
        if n >= 1 << 31:
            raise ValueError(f"{n:,} items: more than an int32 tie rank holds")
        self.k, self.low = min(k, n), low

    @classmethod
    def seeded(cls, seed: int, n_items: int, k: int) -> TopK:
        """The top-k of the seed's tie order over `n_items` (`tie_low`: made once, then cached)."""
        return cls(None, k, low=tie_low(int(seed), int(n_items)))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Each row's first k items (int64 [rows, k])."""
        return self.ranked(scores)[0]

    def ranked(self, scores: np.ndarray, row: np.ndarray | None = None, item: np.ndarray | None = None):
        """(items int64 [rows, k], their scores float32) of each row, the cells (row[j], item[j])
        ranked as a score of −inf (excluded items: last, their score given as −inf), `scores`
        itself never written (it may be a read-only view)."""
        scores = np.ascontiguousarray(scores, dtype=np.float32)
        rows = len(scores)
        if self.k == 0 or rows == 0:
            return np.zeros((rows, self.k), np.int64), np.zeros((rows, self.k), np.float32)
        bits, key, mask = _buffers(rows, len(self.low))
        _order_bits(scores.view(np.int32), bits, mask)
        if row is not None and len(row):
            bits[row, item] = NEG_INF_BITS
        np.copyto(key, bits)
        np.left_shift(key, 32, out=key)
        np.bitwise_or(key, self.low, out=key)
        top = _largest(key, mask, self.k)
        values = np.take_along_axis(scores, top, axis=1)
        values[np.take_along_axis(bits, top, axis=1) == NEG_INF_BITS] = -np.inf
        return top, values
