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
