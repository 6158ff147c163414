"""Comparing two runs' recommendation lists for the Recommendations page: how much they overlap,
the users on whom they disagree most, and one user's two lists side by side.

A top-N list is an int array [n_users, N] of internal item ids, row u for user u, best first;
a negative id pads a list shorter than N.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def overlap(top_a: np.ndarray, top_b: np.ndarray, k: int = 10) -> np.ndarray:
    """Jaccard |A∩B| / |A∪B| of the two top-k sets, per user (1.0 when both lists are empty).

    Vectorised by sorting each user's 2k ids: with no repeats inside a list, a shared item is
    exactly two equal neighbours in the sorted row."""
    a, b = np.asarray(top_a)[:, :k], np.asarray(top_b)[:, :k]
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"the lists cover {a.shape[0]} and {b.shape[0]} users")
    both = np.sort(np.concatenate([a, b], axis=1), axis=1)
    shared = ((both[:, 1:] == both[:, :-1]) & (both[:, 1:] >= 0)).sum(axis=1)
    union = (a >= 0).sum(axis=1) + (b >= 0).sum(axis=1) - shared
    return np.where(union > 0, shared / np.maximum(union, 1), 1.0)


def disagreement_users(top_a: np.ndarray, top_b: np.ndarray, k: int = 10, n: int = 20) -> np.ndarray:
    """The `n` users whose two top-k lists overlap least, lowest first (ties: lower user id
    first, so the pick is stable across reruns)."""
    ov = overlap(top_a, top_b, k)
    return np.lexsort((np.arange(len(ov)), ov))[:n]


def rank_of(top: np.ndarray, user: int, item: int) -> int | None:
    """1-based rank of `item` in `user`'s list, or None when it is not there."""
    hits = np.flatnonzero(np.asarray(top)[user] == item)
    return int(hits[0]) + 1 if len(hits) else None


def side_by_side(top_a: np.ndarray, scores_a: np.ndarray, top_b: np.ndarray, scores_b: np.ndarray, user: int,
                 item_ids, item_titles, held_out=(), names: tuple[str, str] = ("A", "B"), k: int = 10) -> pd.DataFrame:
    """Both runs' top-k for one user, rank by rank, as a person reads it: each side's item by its
    raw id (as in the data file), its title and score, where that item sits in the other run's list
    (its full stored list, not only the top k; as text, empty when it is not there), and whether it is the
    user's held-out test item. `names` label the two sides (e.g. "#3 neumf")."""
    ids, titles = np.asarray(item_ids, dtype=object), np.asarray(item_titles, dtype=object)
    held = set(int(i) for i in held_out)
    out = {"rank": np.arange(1, k + 1)}
    for (name, top, scores), (other, other_top) in zip(((names[0], top_a, scores_a), (names[1], top_b, scores_b)),
                                                      ((names[1], top_b), (names[0], top_a))):
        items, sc = _pad(np.asarray(top)[user, :k], k), np.asarray(scores, dtype=np.float64)[user, :k]
        sc = np.concatenate([sc, np.full(k - len(sc), np.nan)])
        there = (items >= 0) & np.isfinite(sc)  # not past the end of the list, nor its -inf padding
        out[f"{name} item"] = np.where(there, ids[np.maximum(items, 0)], "")
        out[f"{name} title"] = np.where(there, titles[np.maximum(items, 0)], "")
        # an empty cell, never a missing one (a page prints that as "None")
        out[f"{name} score"] = sc if there.all() else np.array([v if t else "" for v, t in zip(sc, there)], dtype=object)
        ranks = [rank_of(other_top, user, int(i)) if t else None for i, t in zip(items, there)]
        out[f"rank in {other}"] = ["" if r is None else str(r) for r in ranks]
        out[f"{name} item held out"] = [bool(t) and int(i) in held for i, t in zip(items, there)]
    return pd.DataFrame(out)


def _pad(ids: np.ndarray, width: int) -> np.ndarray:
    return np.concatenate([ids, np.full(width - len(ids), -1, dtype=ids.dtype)]).astype(np.int64)
