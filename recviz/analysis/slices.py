"""Who a model fails: any per-user metric sliced by a bucket of users — by their activity in train
(cold → heavy) or by the popularity of their held-out item (rare → blockbuster) — for one run or
several side by side; and the popularity-bias frame (recommended against consumed popularity per
bucket of users' taste).

Buckets are the quartiles of the evaluated users' values (so each holds about a quarter of the
users); a value equal to an edge goes to the lower bucket, and a bucket left empty by ties is not
shown. Each bucket's label names the range of values it holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recviz.analysis.peruser import RunResults
from recviz.eval import beyond


@dataclass(frozen=True)
class Bucketing:
    key: str
    title: str  # "User activity"
    names: tuple[str, ...]  # from the lowest values to the highest
    measure: str  # what is bucketed, in words

    def values(self, r: RunResults) -> np.ndarray:
        pu = r.need()
        if self.key == "activity":
            return pu.activity.astype(np.float64)
        if self.key == "popularity":
            return held_out_popularity(r)
        return pu.history_popularity


ACTIVITY = Bucketing("activity", "User activity", ("cold", "light", "regular", "heavy"),
                     "distinct items the user has in train")
POPULARITY = Bucketing("popularity", "Held-out item popularity", ("rare", "uncommon", "popular", "blockbuster"),
                       "train popularity (users who have it) of the user's held-out item; under the ratio "
                       "split, the median over the user's held-out items")
TASTE = Bucketing("taste", "Users' taste", ("niche", "varied", "mainstream", "blockbuster"),
                  "mean train popularity of the items the user consumed")
SLICES = {b.key: b for b in (ACTIVITY, POPULARITY)}  # what a metric can be sliced by


def held_out_popularity(r: RunResults) -> np.ndarray:
    """Per evaluated user: the train popularity of the held-out item (the median of several)."""
    pu = r.need()
    pop = pu.item_popularity[pu.held_items].astype(np.float64)
    counts = np.diff(pu.held_indptr)
    if np.all(counts == 1):
        return pop
    out = np.full(len(counts), np.nan)
    for i in np.flatnonzero(counts):
        out[i] = np.median(pop[pu.held_indptr[i]:pu.held_indptr[i + 1]])
    return out


def buckets(values: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """(bucket index per value, label per bucket): len(names) quantile buckets of `values`, a value
    on an edge in the lower one. Labels read "cold · 18–32"; a bucket nobody falls in keeps its
    index but is labelled "name · none"."""
    values = np.asarray(values, np.float64)
    n = len(names)
    finite = values[np.isfinite(values)]
    edges = np.quantile(finite, np.arange(1, n) / n) if len(finite) else np.zeros(n - 1)
    codes = np.searchsorted(edges, values, side="left")
    codes[~np.isfinite(values)] = -1
    labels = []
    for i, name in enumerate(names):
        inside = values[codes == i]
        labels.append(f"{name} · {_range(inside)}" if len(inside) else f"{name} · none")
    return codes, labels


def _range(x: np.ndarray) -> str:
    lo, hi = float(x.min()), float(x.max())
    fmt = (lambda v: f"{v:g}") if np.allclose([lo, hi], np.round([lo, hi])) else (lambda v: f"{v:.3g}")
    return fmt(lo) if lo == hi else f"{fmt(lo)}–{fmt(hi)}"


def sliced(runs: list[RunResults], metric: str, by: str) -> pd.DataFrame:
    """[run, bucket, label, users, mean, sem] per run and non-empty bucket: `metric`'s mean over
    the users of the bucket and its standard error; `by` is a key of `SLICES`."""
    bucketing = SLICES[by]
    rows = []
    for r in runs:
        pu = r.need()
        if metric not in pu.metrics:
            continue
        codes, labels = buckets(bucketing.values(r), bucketing.names)
        values = pu.metrics[metric]
        for i, name in enumerate(bucketing.names):
            v = values[codes == i]
            if len(v):
                sem = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
                rows.append({"run": r.label, "bucket": name, "label": labels[i], "users": int(len(v)),
                             "mean": float(v.mean()), "sem": sem})
    return pd.DataFrame(rows, columns=["run", "bucket", "label", "users", "mean", "sem"])


def popularity_bias(runs: list[RunResults], k: int = 10) -> pd.DataFrame:
    """[run, bucket, label, users, consumed, recommended]: users bucketed by the popularity of what
    they consumed (`TASTE`); per bucket the mean popularity of their train items and of their
    top-K recommendations. A model without popularity bias keeps `recommended` near `consumed`."""
    rows = []
    for r in runs:
        pu = r.need()
        recommended = beyond.recommended_popularity(r.top(), pu.item_popularity, k)
        codes, labels = buckets(pu.history_popularity, TASTE.names)
        for i, name in enumerate(TASTE.names):
            inside = (codes == i) & np.isfinite(recommended)
            if inside.any():
                rows.append({"run": r.label, "bucket": name, "label": labels[i], "users": int(inside.sum()),
                             "consumed": float(pu.history_popularity[inside].mean()),
                             "recommended": float(recommended[inside].mean())})
    return pd.DataFrame(rows, columns=["run", "bucket", "label", "users", "consumed", "recommended"])
