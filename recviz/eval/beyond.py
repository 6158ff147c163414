"""Beyond accuracy: what a model recommends, judged without the held-out items — how much of the
catalogue its lists use, how popular what it recommends is (against what the users consumed), how
evenly it spreads exposure, how surprising its items are, and how much of the long tail it shows.

A top list is an int array [users, N] of item ids, best first; a negative id pads a list shorter
than N (a user with fewer unseen items). Only the first K columns count ("@K"). Popularity is
*train* popularity: the number of distinct users who have the item in train (ItemPop's score), so
nothing here reads the held-out items.

Definitions (per user, then averaged over users whose list is not empty, unless said otherwise):
- Coverage@K: distinct items in any user's top K / items in the catalogue (over all users at once).
- ARP@K (average recommendation popularity): the mean popularity of the user's top-K items.
- Popularity lift@K: ARP@K / the mean over the same users of the mean popularity of their train
  items. 1 recommends as popular as the users consumed; above 1, more popular.
- Gini@K: the Gini index of exposure, how unequally the items' appearances in the top-K lists are
  spread over the whole catalogue (never recommended items count as 0): 0 is every item shown
  equally often, (n−1)/n everything on one item. With x sorted ascending,
  G = Σ_i (2i − n − 1)·x_i / (n·Σ x).
- Novelty@K: mean self-information −log2(p_i) of the top-K items, p_i = popularity_i / users
  with train interactions; an item nobody had in train counts as had by one user (so its
  information is finite: log2 of the user count).
- Long tail@K: the share of the top-K items that lie in the long tail (`long_tail`: outside the
  most popular `HEAD_SHARE` of items).
"""

from __future__ import annotations

import numpy as np

from recviz.data.arrays import count_distinct, unique

HEAD_SHARE = 0.2  # the head: the most popular 20 % of items by train popularity; the rest is the long tail

# name → what it measures, for tables and help; "@K" is the list length
METRICS: dict[str, str] = {
    "Coverage@K": "share of the catalogue that appears in some user's top K",
    "ARP@K": "average train popularity (users who had the item) of the recommended items",
    "Popularity lift@K": "ARP@K divided by the average popularity of what the same users consumed in train",
    "Gini@K": "Gini index of how often each item is recommended (0 = evenly, 1 = all on one item)",
    "Novelty@K": "mean self-information −log2(popularity / users) of the recommended items, in bits",
    "Long tail@K": f"share of recommended items outside the {HEAD_SHARE:.0%} most popular items",
}


def name(metric: str, k: int) -> str:
    """'Coverage@K', 10 → 'Coverage@10'."""
    return metric.replace("@K", f"@{k}")


# ---- what train says about items and users -------------------------------------------------------
def _pairs(user: np.ndarray, item: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    keys = unique(np.asarray(user, np.int64) * n_items + np.asarray(item, np.int64))  # sorted, not hashed
    return keys // n_items, keys % n_items


def item_popularity(user: np.ndarray, item: np.ndarray, n_items: int) -> np.ndarray:
    """Distinct users per item (a user who had an item ten times counts once)."""
    return count_distinct(item, user, n_items, int(np.max(user, initial=-1)) + 1)


def user_profile(user: np.ndarray, item: np.ndarray, n_users: int, n_items: int,
                 popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(activity, history popularity) per user: how many distinct items the user has in train, and
    the mean popularity of those items (NaN for a user without any)."""
    users, items = _pairs(user, item, n_items)
    activity = np.bincount(users, minlength=n_users)
    total = np.bincount(users, weights=popularity[items].astype(np.float64), minlength=n_users)
    with np.errstate(invalid="ignore", divide="ignore"):
        return activity.astype(np.int64), np.where(activity > 0, total / np.maximum(activity, 1), np.nan)


def long_tail(popularity: np.ndarray, head: float = HEAD_SHARE) -> np.ndarray:
    """True for items in the long tail: less popular than the ⌈head·n⌉-th most popular item.
    An item as popular as that one is in the head too, so ties never split by item id."""
    popularity = np.asarray(popularity)
    n = len(popularity)
    if n == 0:
        return np.zeros(0, bool)
    cut = int(np.ceil(head * n))
    if cut <= 0:
        return np.ones(n, bool)
    threshold = np.partition(popularity, n - cut)[n - cut]
    return popularity < threshold


# ---- metrics of top lists ---------------------------------------------------------------------------
def _top(top: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first k columns and where they hold an item (not padding)."""
    t = np.asarray(top)[:, :k]
    return t, t >= 0


def _per_user_mean(values: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Mean of `values` over each row's shown entries; NaN for an empty row."""
    count = shown.sum(axis=1)
    total = np.where(shown, values, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def coverage(top: np.ndarray, n_items: int, k: int) -> float:
    t, shown = _top(top, k)
    return float(len(np.unique(t[shown])) / n_items) if n_items else float("nan")


def exposure(top: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """How many top-K lists each item appears in."""
    t, shown = _top(top, k)
    return np.bincount(t[shown], minlength=n_items)


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts (one per item, zeros included); NaN when all are 0."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def recommended_popularity(top: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """Per user: the mean popularity of the top-K items (ARP's terms)."""
    t, shown = _top(top, k)
    return _per_user_mean(np.asarray(popularity, np.float64)[np.maximum(t, 0)], shown)


def novelty(top: np.ndarray, popularity: np.ndarray, n_train_users: int, k: int) -> np.ndarray:
    """Per user: the mean self-information −log2(popularity / n_train_users) of the top-K items."""
    t, shown = _top(top, k)
    p = np.maximum(np.asarray(popularity, np.float64)[np.maximum(t, 0)], 1.0) / max(n_train_users, 1)
    return _per_user_mean(-np.log2(p), shown)


def long_tail_share(top: np.ndarray, tail: np.ndarray, k: int) -> np.ndarray:
    """Per user: the share of the top-K items in the long tail (`tail`: a mask over items)."""
    t, shown = _top(top, k)
    return _per_user_mean(np.asarray(tail, bool)[np.maximum(t, 0)].astype(np.float64), shown)


def beyond_accuracy(top: np.ndarray, k: int, n_items: int, popularity: np.ndarray | None = None,
                    history_popularity: np.ndarray | None = None,
                    n_train_users: int | None = None) -> dict[str, float | None]:
    """Every metric of `METRICS` at K over the users of `top`, by its name ("Coverage@10", ...).
    Without train popularity (runs stored by earlier versions), those that need it are None —
    never a number computed from something else."""
    t, shown = _top(top, k)
    out: dict[str, float | None] = {name(m, k): None for m in METRICS}
    out[name("Coverage@K", k)] = coverage(t, n_items, k)
    out[name("Gini@K", k)] = gini(exposure(t, n_items, k))
    if popularity is None:
        return out
    arp = recommended_popularity(t, popularity, k)
    out[name("ARP@K", k)] = _mean(arp)
    if history_popularity is not None:
        both = np.isfinite(arp) & np.isfinite(history_popularity)
        consumed = _mean(np.asarray(history_popularity)[both])
        out[name("Popularity lift@K", k)] = _mean(arp[both]) / consumed if consumed else None
    if n_train_users is not None:
        out[name("Novelty@K", k)] = _mean(novelty(t, popularity, n_train_users, k))
    out[name("Long tail@K", k)] = _mean(long_tail_share(t, long_tail(popularity), k))
    return out


def _mean(values: np.ndarray) -> float | None:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None
