"""Preparation applied after reading: k-core filtering, rating thresholds, a seeded user sample,
de-duplication.

Every step returns a new `Interactions` (the input is never modified), keeps the raw-id maps, the
item table and the shipped test set (`given_test`) consistent with the new contiguous ids, and
appends a record to `meta["filters"]` so that a run can say exactly what data it was trained on.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recviz.data.arrays import lexsort_ints, sort_ints
from recviz.data.interactions import GivenTest, Interactions
from recviz.errors import DataError

DEDUP_KEYS = ("user", "item", "behavior")


# ---- id maintenance ---------------------------------------------------------------------------
def reindex(inter: Interactions) -> Interactions:
    """Drop user/item ids that no longer occur and renumber the rest 0..n-1 (order preserved).

    Ids referenced by `given_test` (its users, held-out items and negatives) count as occurring,
    even without training rows: the NCF files rank against items that may never appear in train,
    and dropping them would silently break the shipped evaluation."""
    used_u = np.zeros(inter.n_users, bool)
    used_i = np.zeros(inter.n_items, bool)
    used_u[inter.user] = True
    used_i[inter.item] = True
    g = inter.given_test
    if g is not None:
        used_u[g.user] = True
        used_i[g.item] = True
        used_i[g.negatives.ravel()] = True
    if used_u.all() and used_i.all():
        return inter
    new_u = np.cumsum(used_u, dtype=np.int64) - 1
    new_i = np.cumsum(used_i, dtype=np.int64) - 1
    items = None
    if inter.items is not None:
        items = inter.items.iloc[np.flatnonzero(used_i)].reset_index(drop=True)
    given = None
    if g is not None:
        given = GivenTest(new_u[g.user], new_i[g.item], new_i[g.negatives])
    return replace(inter, user=new_u[inter.user], item=new_i[inter.item],
                   user_ids=inter.user_ids[used_u], item_ids=inter.item_ids[used_i],
                   items=items, given_test=given)


def _with_filter(inter: Interactions, record: dict, note: str | None = None) -> Interactions:
    """A copy whose meta has `record` appended to "filters" (and `note` to "notes")."""
    meta = dict(inter.meta)
    meta["filters"] = [*meta.get("filters", []), record]
    if note:
        meta["notes"] = [*meta.get("notes", []), note]
    return replace(inter, meta=meta)


def _shape(inter: Interactions, rows: np.ndarray | None = None) -> dict:
    """Users / items / rows that actually occur (in `rows` if given, a boolean row mask)."""
    user = inter.user if rows is None else inter.user[rows]
    item = inter.item if rows is None else inter.item[rows]
    return {"users": int(np.count_nonzero(np.bincount(user, minlength=inter.n_users))),
            "items": int(np.count_nonzero(np.bincount(item, minlength=inter.n_items))),
            "rows": int(len(user))}


# ---- k-core -----------------------------------------------------------------------------------
def kcore(inter: Interactions, min_user: int = 5, min_item: int = 5) -> Interactions:
    """Keep the largest sub-table in which every user has ≥ `min_user` rows and every item
    ≥ `min_item` rows. Removing a rare item can push a user under the limit and vice versa, so this
    repeats until nothing changes. Counts are rows (for multi-behaviour data a click and a buy of
    the same item are two rows).

    A shipped test set survives only if all its users, held-out items and negatives survive;
    otherwise it is dropped (the remaining ids no longer match the published benchmark) and
    `meta["notes"]` says why, so evaluation falls back to a fresh split."""
    if min_user < 1 or min_item < 1:
        raise DataError(f"k-core limits must be ≥ 1 (got min_user={min_user}, min_item={min_item})",
                        fix="use 1 to switch a side off, e.g. min_item=1")
    alive = np.ones(len(inter), bool)
    steps = [_shape(inter)]
    while True:
        u_count = np.bincount(inter.user[alive], minlength=inter.n_users)
        i_count = np.bincount(inter.item[alive], minlength=inter.n_items)
        keep = alive & (u_count[inter.user] >= min_user) & (i_count[inter.item] >= min_item)
        if keep.sum() == alive.sum():
            break
        alive = keep
        steps.append(_shape(inter, alive))
        if not alive.any():
            break
    if not alive.any():
        trail = " → ".join(f"{s['users']} users/{s['items']} items" for s in steps)
        raise DataError(f"k-core filtering (min_user={min_user}, min_item={min_item}) removed "
                        f"every interaction; after each pass: {trail}",
                        file=inter.source or None,
                        fix="lower min_user / min_item (e.g. 2 or 1 to switch a side off)")
    out, note = _drop_given_if_filtered(inter.subset(alive), alive, inter)
    record = {"op": "kcore", "min_user": min_user, "min_item": min_item,
              "passes": len(steps) - 1, "before": steps[0], "after": steps[-1],
              "steps": steps}
    return _with_filter(reindex(out), record, note)


def _drop_given_if_filtered(out: Interactions, alive: np.ndarray, src: Interactions):
    """(table, note): `out` with given_test removed if filtering took away any id it needs."""
    g = src.given_test
    if g is None:
        return out, None
    users_left = np.zeros(src.n_users, bool)
    items_left = np.zeros(src.n_items, bool)
    users_left[src.user[alive]] = True
    items_left[src.item[alive]] = True
    lost_u = int((~users_left[g.user]).sum())
    lost_i = int((~items_left[g.item] | (~items_left[g.negatives]).any(axis=1)).sum())
    if lost_u == 0 and lost_i == 0:
        return out, None
    note = (f"the shipped test set was dropped: filtering removed {lost_u} of its users, and {lost_i} "
            f"of its rows lost their held-out item or a negative; evaluation will use a fresh split")
    return replace(out, given_test=None), note


# ---- a sample of users ------------------------------------------------------------------------
SAMPLE_SEED = 0  # the sample's own seed: every run that asks for N users of a dataset gets the same N


def sample_users(inter: Interactions, n: int, seed: int = SAMPLE_SEED) -> Interactions:
    """Keep `n` users drawn uniformly at random, with ALL their rows (as the Taobao paper explored
    UserBehavior through 20,000 sampled users), to explore a large log quickly.

    The users are the first `n` of one seeded permutation of the users that occur, so the sample
    is reproducible from `seed` and nested (the 10,000-user sample lies inside the 20,000-user
    one); a run's `sample_users` uses the fixed SAMPLE_SEED, not the run's seed, so repeating an
    experiment over seeds compares models on the same users, and the data a run reads depends on
    its data settings alone. `n` at least the number of users keeps every user. Linear: one
    boolean mask over users, read by every row. A shipped test set keeps the sampled users' rows
    (their negatives stay in the id space). K-core, when asked for, applies to the sample."""
    if n < 1:
        raise DataError(f"a user sample needs at least 1 user, not {n}", fix="use 0 (off) or a positive number")
    present = np.flatnonzero(np.bincount(inter.user, minlength=inter.n_users))
    chosen = present[np.random.default_rng(seed).permutation(len(present))[:n]]
    keep = np.zeros(inter.n_users, bool)
    keep[chosen] = True
    rows = keep[inter.user]
    out = inter.subset(rows)
    g = inter.given_test
    if g is not None:
        mine = keep[g.user]
        out = replace(out, given_test=GivenTest(g.user[mine], g.item[mine], g.negatives[mine]) if mine.any() else None)
    record = {"op": "sample_users", "users": int(n), "seed": int(seed), "before": _shape(inter),
              "after": _shape(inter, rows)}
    return _with_filter(reindex(out), record)


def sampled_users(inter: Interactions) -> int:
    """The user sample this data was prepared with (the last `sample_users` step), or 0."""
    steps = [f for f in inter.meta.get("filters", []) if f.get("op") == "sample_users"]
    return int(steps[-1]["users"]) if steps else 0


# ---- thresholds -------------------------------------------------------------------------------
def threshold(inter: Interactions, min_rating: float) -> Interactions:
    """Keep rows rated ≥ `min_rating` as positives (the usual way to turn explicit ratings into
    implicit feedback, e.g. ≥ 4 on MovieLens). The rating column is kept, so the kept values stay
    inspectable; ids without any remaining row are dropped."""
    if inter.rating is None:
        raise DataError("this dataset has no ratings, so there is nothing to threshold",
                        file=inter.source or None, column="rating",
                        fix="skip the rating threshold (every row already counts as a positive), "
                            "or map a rating column when importing the file")
    keep = inter.rating >= min_rating
    if not keep.any():
        lo, hi = (float(inter.rating.min()), float(inter.rating.max())) if len(inter) else (0, 0)
        raise DataError(f"no rows have rating ≥ {min_rating:g} (ratings range {lo:g}..{hi:g}); "
                        f"0 users and 0 items would remain",
                        file=inter.source or None, column="rating",
                        fix=f"choose a threshold ≤ {hi:g}")
    record = {"op": "threshold", "min_rating": float(min_rating), "before": _shape(inter),
              "after": _shape(inter, keep)}
    return _with_filter(reindex(inter.subset(keep)), record)


# ---- duplicates -------------------------------------------------------------------------------
def dedup(inter: Interactions, keep: str = "last",
          keys: tuple[str, ...] = ("user", "item")) -> Interactions:
    """One row per `keys` combination (default: per user–item pair).

    Which row wins: with keep="last" the row with the latest timestamp; among rows with the same
    timestamp (or when there are no timestamps) the one that comes later in the table. keep="first"
    is the mirror image: earliest timestamp, ties → earlier row. Surviving rows keep their original
    order. Use keys=("user", "item", "behavior") on multi-behaviour data to keep one row per
    behaviour instead of collapsing a click and a buy of the same item."""
    if keep not in ("last", "first"):
        raise DataError(f"dedup keep must be 'last' or 'first', not {keep!r}")
    unknown = [k for k in keys if k not in DEDUP_KEYS]
    if unknown or not keys:
        raise DataError(f"dedup keys {list(keys)} are not valid; choose from {list(DEDUP_KEYS)}")
    if "behavior" in keys and inter.behavior is None:
        raise DataError("dedup by 'behavior' needs a behaviour column, and this dataset has none",
                        file=inter.source or None, fix="use keys=('user', 'item')")
    n = len(inter)
    row = np.arange(n)
    sort_keys = [row] + ([inter.timestamp] if inter.timestamp is not None else [])
    sort_keys += [getattr(inter, k) for k in reversed(keys)]
    order = lexsort_ints(sort_keys)  # by keys, then time, then table order, all ascending
    group_key = np.stack([getattr(inter, k)[order].astype(np.int64) for k in keys])
    new_group = np.ones(n, bool)
    if n:
        new_group[1:] = (group_key[:, 1:] != group_key[:, :-1]).any(axis=0)
    if keep == "first":
        winners = order[new_group]
    else:
        last_of_group = np.r_[new_group[1:], True] if n else new_group
        winners = order[last_of_group]
    winners = sort_ints(winners)
    record = {"op": "dedup", "keep": keep, "keys": list(keys), "removed": int(n - len(winners))}
    return _with_filter(inter.subset(winners), record)
