"""A 2-D map of item embeddings: do the items a user liked, the items recommended to them and
the item held out for them sit together?

PCA (not t-SNE/UMAP): linear, deterministic, instant on thousands of items, and its axes mean
something ("the direction of most variance"). numpy SVD only: no scikit-learn dependency.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ROLES = ("other", "history", "recommended", "held-out")  # drawing order: highlights on top
MAX_OTHERS = 5_000  # grey background items drawn at most: the map's size stays bounded at any catalogue size


def _centred_svd(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a [n, d] array, got shape {x.shape}")
    x = x - x.mean(axis=0) if len(x) else x
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return u, s


def pca_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """Coordinates [n, 2] on the first two principal components of the centred vectors.

    SVD's signs are arbitrary (they may flip between numpy builds or after retraining), which
    would mirror the map for no reason; each axis is flipped so that its largest-|value|
    coordinate is positive. `seed` is unused: the SVD is exact, so there is nothing random to
    seed; it stays so callers can switch to a randomised method without changing calls.
    Fewer than two dimensions (or points) leave the missing axis at 0."""
    u, s = _centred_svd(vectors)
    coords = np.zeros((len(u), 2))
    m = min(2, len(s))
    coords[:, :m] = u[:, :m] * s[:m]
    if len(coords):
        pivot = coords[np.argmax(np.abs(coords), axis=0), [0, 1]]
        coords *= np.where(pivot < 0, -1.0, 1.0)
    return coords


def explained_variance(vectors: np.ndarray) -> tuple[float, float]:
    """Share of the total variance along the first and second axes of `pca_2d` (what the axis
    titles show: a map explaining 8 % of the variance should not be over-read)."""
    _, s = _centred_svd(vectors)
    var = s ** 2
    total = var.sum()
    if total <= 0:
        return 0.0, 0.0
    ratios = np.r_[var / total, 0.0, 0.0]
    return float(ratios[0]), float(ratios[1])


def embedding_map(coords: np.ndarray, item_titles, history_items=(), recommended_items=(),
                  held_out_items=(), max_others: int | None = MAX_OTHERS, seed: int = 0) -> pd.DataFrame:
    """[item, x, y, title, role] for every item, sorted so "other" comes first (drawn beneath).
    Beyond `max_others` background ("other") items, a seeded uniform sample of that many is kept
    (the same one on every rerun; None keeps all); the user's items are always all there.

    An item in several groups takes the most telling role: held-out (a held-out item that was
    recommended is a hit, and the page says so by it sitting among the recommendations), then
    recommended, then history."""
    coords = np.asarray(coords, dtype=float)
    n = len(coords)
    role = np.full(n, "other", dtype=object)
    for name, items in (("history", history_items), ("recommended", recommended_items),
                        ("held-out", held_out_items)):
        ids = np.asarray(items, dtype=np.int64).ravel()
        role[ids[(ids >= 0) & (ids < n)]] = name
    keep = np.arange(n)
    others = np.flatnonzero(role == "other")
    if max_others is not None and len(others) > max_others:
        dropped = np.random.default_rng(seed).choice(others, len(others) - max_others, replace=False)
        keep = np.setdiff1d(keep, dropped)
    df = pd.DataFrame({"item": keep, "x": coords[keep, 0], "y": coords[keep, 1],
                       "title": np.asarray(item_titles, dtype=object)[keep], "role": role[keep]})
    order = pd.Categorical(df["role"], categories=list(ROLES)).codes
    return df.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)
