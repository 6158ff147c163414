"""Whole-column array helpers that stay fast at 100M rows.

`np.unique` of numpy ≥ 2.3 finds the distinct values of a plain call with a hash table, which on
millions of distinct int64 keys is an order of magnitude slower than sorting them (9.5M keys: 27 s
against 1.3 s on this project's 2-core machine). `unique` sorts.
"""

from __future__ import annotations

import numpy as np


def unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d array (`np.unique(values)`, by one sort)."""
    out = np.sort(np.asarray(values).ravel())
    if len(out) > 1:
        out = out[np.r_[True, out[1:] != out[:-1]]]
    return out


def count_distinct(group: np.ndarray, member: np.ndarray, n_groups: int, n_members: int) -> np.ndarray:
    """How many distinct `member` values each group has: int64 [n_groups], e.g. the distinct users
    of each item, a user who had an item ten times counting once.

    By one in-place sort of one int64 key (group × n_members + member), never a hash table, and in
    about 1.1× the key's memory: the key array itself becomes the counts' input, repeats set to an
    extra bin."""
    keys = np.asarray(group).astype(np.int64)  # a copy: sorted, then overwritten, in place
    keys *= n_members
    keys += member
    keys.sort()
    repeat = np.zeros(len(keys), bool)
    np.equal(keys[1:], keys[:-1], out=repeat[1:])
    keys //= n_members
    keys[repeat] = n_groups  # a pair seen before: counted in the extra bin, dropped below
    return np.bincount(keys, minlength=n_groups + 1)[:n_groups]
