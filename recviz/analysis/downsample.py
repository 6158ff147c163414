"""Bounded charts: which points of a long curve to draw, so that a figure's size stays the same
whatever the data's size (a 400,000-item long tail drawn point by point is 4 MB of figure JSON).

A long-tail curve is sorted, so it is monotone: between two kept points the true curve stays
between their values, and a line through the kept points never leaves the band the true curve
is in. Keeping points evenly spaced on a log scale of rank draws the head (the first hundred
ranks) as faithfully as the tail; keeping points evenly spaced on a linear scale draws the tail
as a linear axis shows it. Each kept point is an exact value of the curve, never an average.
"""

from __future__ import annotations

import numpy as np

MAX_POINTS = 1_000  # per curve: a figure with two curves is ~30 KB of JSON, at any data size


def curve_positions(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted 0-based positions to draw of a descending curve `values`: all of them when there
    are at most `max_points`, else about half spaced evenly by log(rank) and half evenly by rank,
    plus the first, the last, and the last non-zero point and the first zero (where a log axis
    stops drawing). At most `max_points` + 4 positions."""
    values = np.asarray(values)
    n = len(values)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, not {max_points}")
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    half = max_points // 2
    by_log = np.rint(np.geomspace(1, n, half)).astype(np.int64) - 1
    by_rank = np.rint(np.linspace(0, n - 1, max_points - half)).astype(np.int64)
    nonzero = np.flatnonzero(values > 0)  # descending, so the non-zero values come first
    edges = [0, n - 1] + ([int(nonzero[-1])] if len(nonzero) else []) \
        + ([int(nonzero[-1]) + 1] if len(nonzero) and nonzero[-1] + 1 < n else [])
    return np.unique(np.concatenate([by_log, by_rank, np.asarray(edges, dtype=np.int64)]))
