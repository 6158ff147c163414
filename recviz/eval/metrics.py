"""Ranking metrics, vectorised over users.

Ties never favour the held-out item. For sampled candidates we go further and return the *expected*
metric under a uniformly random order of tied items: a constant scorer gets exactly the chance rate
(HR@10 = 10/101 with 100 candidates), and no tie-breaking seed can move a model's number. For full
ranking the top-K is cut with ties ordered by a seeded random permutation of the items (the same
permutation for every model judged on a split).

Definitions (per user, then averaged over evaluated users):
- HR@K: sampled — the held-out item is in the top K; full — at least one held-out item is.
- NDCG@K: DCG / ideal DCG with gains 1/log2(rank+1); one held-out item ⇒ 1/log2(rank+1) if rank ≤ K.
- Recall@K: hits in the top K / number of held-out items (RecBole's definition).
- Precision@K: hits in the top K / K.
- rank: sampled — the held-out item's expected 1-based rank among its candidates; full — the rank
  of the user's best-placed held-out item within the top list, +inf when none is in it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (5, 10, 20)
PRIMARY = "NDCG@10"  # the metric a comparison of runs, a slice or a report reads unless told another


def _discounts(n: int) -> np.ndarray:
    """D[r] = Σ_{j=1..r} 1/log2(j+1), D[0] = 0."""
    return np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, n + 2)))]


def sampled_metrics(scores: np.ndarray, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user HR@K and NDCG@K; column 0 of `scores` [users, 1+N] is the held-out item.

    With g candidates scored strictly higher and e scored equal, the held-out item's rank is
    uniform on g+1 .. g+e+1, so HR@K = clip((K-g)/(e+1), 0, 1) and
    NDCG@K = (D[min(g+e+1, K)] - D[min(g, K)]) / (e+1).
    Also returns `rank` (expected 1-based rank) for display.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    target = scores[:, :1]
    greater = (scores[:, 1:] > target).sum(axis=1)
    equal = (scores[:, 1:] == target).sum(axis=1)
    out: dict[str, np.ndarray] = {"rank": greater + 1 + equal / 2}
    disc = _discounts(scores.shape[1])
    for k in ks:
        out[f"HR@{k}"] = np.clip((k - greater) / (equal + 1), 0.0, 1.0)
        out[f"NDCG@{k}"] = (disc[np.minimum(greater + equal + 1, k)] - disc[np.minimum(greater, k)]) / (equal + 1)
    return out


def top_k(scores: np.ndarray, k: int, tie_perm: np.ndarray) -> np.ndarray:
    """Indices of the k best items per row; ties ordered by `tie_perm` (a permutation of items).

    `-inf` marks excluded items. Stable sort on permuted columns means an item earlier in the
    permutation wins a tie, so which tied item makes the cut is random but reproducible.
    """
    order = np.argsort(-scores[:, tie_perm], axis=1, kind="stable")[:, :k]
    return tie_perm[order]


def full_ranking_metrics(top: np.ndarray, held_indptr: np.ndarray, held_items: np.ndarray,
                         ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user HR/Recall/Precision/NDCG@K from each user's top list [users, ≥max(ks)] and the
    user's held-out items in CSR form (row u holds held_items[held_indptr[u]:held_indptr[u+1]])."""
    n_users, width = top.shape
    n_held = np.diff(held_indptr)
    if width < max(ks):
        raise ValueError(f"top lists have {width} items, fewer than K={max(ks)}")
    # hit[u, r]: is the item at rank r+1 one of user u's held-out items?
    mult = int(max(top.max(initial=0), held_items.max(initial=0))) + 1
    held_key = np.repeat(np.arange(n_users, dtype=np.int64), n_held) * mult + held_items
    top_key = np.arange(n_users, dtype=np.int64)[:, None] * mult + top
    hit = np.isin(top_key, held_key)
    disc = 1.0 / np.log2(np.arange(2, width + 2))
    ideal = _discounts(width)
    first = hit.argmax(axis=1)
    out: dict[str, np.ndarray] = {"rank": np.where(hit.any(axis=1), first + 1.0, np.inf)}
    for k in ks:
        hits = hit[:, :k].sum(axis=1)
        out[f"HR@{k}"] = (hits > 0).astype(np.float64)
        out[f"Recall@{k}"] = hits / n_held
        out[f"Precision@{k}"] = hits / k
        out[f"NDCG@{k}"] = (hit[:, :k] * disc[:k]).sum(axis=1) / ideal[np.minimum(n_held, k)]
    return out


def mean(per_user: dict[str, np.ndarray]) -> dict[str, float]:
    """Average each metric over users (NaN-free by construction), rounded for display/JSON."""
    return {name: round(float(v.mean()), 6) if len(v) else float("nan")
            for name, v in per_user.items() if name != "rank"}
