"""Whole-column array helpers that stay fast at 100M rows.

`np.unique` of numpy ≥ 2.3 finds the distinct values of a plain call with a hash table, which on
millions of distinct int64 keys is an order of magnitude slower than sorting them (9.5M keys: 27 s
against 1.3 s on this project's 2-core machine). `unique` sorts.

Integer keys sort in linear time (`sort_ints`, `argsort_ints`, `lexsort_ints`: the compiled radix
sort of `recviz/native/radix.c`, where it can be built): numpy's sorts compare, and their cost per
element grows with the rows — on this VM the import, the split and ItemPop's evaluation grew
12.7–13.5× per 10× rows with them. Each falls back to numpy's sort (same result) for negative keys,
non-integer arrays, or where the kernel cannot be had.
"""

from __future__ import annotations

import numpy as np

from recviz import native

_BLOCK = 1 << 20  # values per step of a whole-column binary search


def _radix(keys: np.ndarray, order: np.ndarray | None, with_order: bool, overwrite: bool = False):
    """(sorted int64 — uint64 for uint64 — keys, positions or None) by the compiled radix sort, or
    None where it cannot run. Its scratch (one key and one position per row) is numpy's, so memory
    tracing sees it; `overwrite`: a 1-d int64/uint64 `keys` (with no `order`) becomes the sorted
    keys, sparing a copy."""
    kernel = native.kernel("radix_sort_i64")
    if kernel is None or keys.dtype.kind not in "iu" or keys.dtype.itemsize > 8:
        return None
    unsigned = keys.dtype == np.uint64  # all 64 bits; smaller types fit int64
    wide = np.uint64 if unsigned else np.int64
    in_place = overwrite and order is None and keys.dtype == wide and keys.flags.c_contiguous
    keys = np.ascontiguousarray(keys, dtype=wide)
    if order is not None:
        order = np.ascontiguousarray(order, dtype=np.int64)
    n = len(keys) if order is None else len(order)
    out = keys if in_place else np.empty(n, wide)
    positions, tmp = (np.empty(n, np.int64), np.empty(n, np.int64)) if with_order else (None, None)
    scratch = np.empty(n, np.int64)  # held by a name until the call returns
    done = kernel(keys.ctypes.data, None if order is None else order.ctypes.data, n, out.ctypes.data,
                  None if positions is None else positions.ctypes.data, scratch.ctypes.data,
                  None if tmp is None else tmp.ctypes.data, int(unsigned))
    return None if done < 0 else (out, positions)  # < 0: a negative key (nothing written)


def sort_ints(values: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """`np.sort(values)` of a 1-d array, in linear time for integers (see the module docstring);
    `overwrite`: a 1-d `values` may be sorted in place and returned (as `values.sort()`)."""
    values = np.asarray(values)
    values = values if values.ndim == 1 else values.ravel()
    done = _radix(values, None, False, overwrite)
    if done is None:
        if overwrite:
            values.sort()
            return values
        return np.sort(values)
    return done[0].astype(values.dtype, copy=False)


def argsort_ints(keys: np.ndarray, order: np.ndarray | None = None, overwrite: bool = False) -> np.ndarray:
    """`order[np.argsort(keys[order], kind="stable")]` (order: all positions when None): the
    positions by key, equal keys in their order in `order`; linear time for integer keys.
    `overwrite` (no `order`): `keys` is left holding the sorted keys, which spares a copy."""
    keys = np.asarray(keys)
    keys = keys if keys.ndim == 1 else keys.ravel()
    done = _radix(keys, order, True, overwrite)
    if done is not None:
        if overwrite and order is None and done[0] is not keys:  # another dtype: copied for the sort
            keys[:] = done[0]
        return done[1]
    if order is None:
        positions = np.argsort(keys, kind="stable")
        if overwrite:  # as the radix sort leaves it
            keys[:] = keys[positions]
        return positions
    order = np.asarray(order, np.int64)
    return order[np.argsort(keys[order], kind="stable")]


def lexsort_ints(keys) -> np.ndarray:
    """`np.lexsort(keys)` (the last key sorts first; ties keep position order), one stable radix
    pass per key from the first, in linear time for integer keys."""
    order = None
    for key in keys:
        order = argsort_ints(key, order)
    return order


def isin_ints(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """`np.isin(values, of)` for non-negative integer keys: through a hash set of `of` (the
    compiled `member_i64`: time linear in both, ~16 bytes of scratch per element of `of`), else by
    binary search in sorted `of`, a block of values at a time so the temporaries stay small."""
    values, of = np.asarray(values).ravel(), np.asarray(of).ravel()
    out = np.zeros(len(values), bool)
    if not len(of) or not len(values):
        return out
    kernel = native.kernel("member_i64") if values.dtype.kind in "iu" and of.dtype.kind in "iu" else None
    if kernel is not None:  # uint64 keys past int64 turn negative here, and are refused
        v, o = np.ascontiguousarray(values, np.int64), np.ascontiguousarray(of, np.int64)
        table = np.empty(1 << (2 * len(o) - 1).bit_length(), np.int64)  # a power of two ≥ 2·len(of)
        if kernel(v.ctypes.data, len(v), o.ctypes.data, len(o), table.ctypes.data, len(table), out.ctypes.data) == 0:
            return out
    of = sort_ints(of)
    for s in range(0, len(values), _BLOCK):
        part = values[s:s + _BLOCK]
        pos = np.searchsorted(of, part)
        np.minimum(pos, len(of) - 1, out=pos)
        out[s:s + _BLOCK] = of[pos] == part
    return out


def unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d array (`np.unique(values)`, by one sort)."""
    out = sort_ints(values)
    if len(out) > 1:
        out = out[np.r_[True, out[1:] != out[:-1]]]
    return out


def count_distinct(group: np.ndarray, member: np.ndarray, n_groups: int, n_members: int) -> np.ndarray:
    """How many distinct `member` values each group has: int64 [n_groups], e.g. the distinct users
    of each item, a user who had an item ten times counting once.

    By one in-place sort of one int64 key (group × n_members + member), never a hash table, in
    about 2.1× the key's memory (the radix sort's scratch): the sorted keys become the counts'
    input, repeats set to an extra bin."""
    keys = np.asarray(group).astype(np.int64)  # a copy: sorted, then overwritten, in place
    keys *= n_members
    keys += member
    keys = sort_ints(keys, overwrite=True)
    repeat = np.zeros(len(keys), bool)
    np.equal(keys[1:], keys[:-1], out=repeat[1:])
    keys //= n_members
    keys[repeat] = n_groups  # a pair seen before: counted in the extra bin, dropped below
    return np.bincount(keys, minlength=n_groups + 1)[:n_groups]
