"""The Data page's numbers: what a dataset looks like before anything is trained on it.

Counts are over *rows* (interactions), not distinct pairs: a multi-behaviour dataset where a user
clicked and then bought an item contributes two rows, and that is what the long tail should show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions

PARTS = ("train", "valid", "test")
UNUSED = "unused"  # a row in no part of the split (see `user_history`)


def rating_histogram(inter: Interactions) -> pd.DataFrame | None:
    """How often each rating value occurs, ascending by rating; None for implicit data (no
    ratings) so the page can say so instead of drawing an empty chart."""
    if inter.rating is None or len(inter) == 0:
        return None
    values, counts = np.unique(inter.rating, return_counts=True)
    return pd.DataFrame({"rating": values.astype(float), "count": counts.astype(np.int64)})


def activity(inter: Interactions, by: str = "user") -> pd.DataFrame:
    """Interactions per user (or item), most active first, with rank 1..n: the long-tail plot.

    Users/items with no rows (possible after filtering a table in place) are kept with 0 so the
    tail is honest about them; a log-scale chart simply does not draw zeros."""
    if by not in ("user", "item"):
        raise ValueError(f"by must be 'user' or 'item', not {by!r}")
    ids, n = (inter.user, inter.n_users) if by == "user" else (inter.item, inter.n_items)
    counts = np.sort(np.bincount(ids, minlength=n))[::-1]
    return pd.DataFrame({"rank": np.arange(1, n + 1), "interactions": counts.astype(np.int64)})


def behavior_mix(inter: Interactions) -> pd.DataFrame | None:
    """Rows per behaviour (in the dataset's own behaviour order) and their share of all rows;
    None when the data has no behaviour column."""
    if inter.behavior is None:
        return None
    counts = np.bincount(inter.behavior, minlength=len(inter.behaviors)).astype(np.int64)
    share = counts / max(1, counts.sum())
    return pd.DataFrame({"behavior": list(inter.behaviors), "count": counts, "share": share})


def summary_table(inter: Interactions) -> pd.DataFrame:
    """Headline statistics as a two-column [statistic, value] table of display strings.

    Values are pre-formatted text: one column holding ints, floats and dates would not survive
    the Arrow conversion Streamlit does for tables."""
    rows = [("users", f"{inter.n_users:,}"), ("items", f"{inter.n_items:,}"),
            ("interactions", f"{len(inter):,}"), ("density", f"{inter.density * 100:.3g}%")]
    if len(inter):
        per_user = np.bincount(inter.user, minlength=inter.n_users)
        per_item = np.bincount(inter.item, minlength=inter.n_items)
        rows += [("median interactions per user", f"{np.median(per_user):g}"),
                 ("median interactions per item", f"{np.median(per_item):g}")]
    if inter.rating is not None and len(inter):
        rows.append(("ratings", f"{inter.rating.min():g} to {inter.rating.max():g}, "
                                f"mean {inter.rating.mean():.2f}"))
    if inter.behavior is not None:
        rows.append(("behaviours", ", ".join(inter.behaviors)))
    if inter.timestamp is not None and len(inter):
        first, last = pd.to_datetime([inter.timestamp.min(), inter.timestamp.max()], unit="s")
        rows.append(("time span", f"{first:%Y-%m-%d} → {last:%Y-%m-%d} ({(last - first).days:,} days)"))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def item_titles(inter: Interactions) -> np.ndarray:
    """A title for every internal item id ("item <raw id>" where the data has none): what charts
    and tables show instead of bare ids."""
    fallback = np.char.add("item ", inter.item_ids.astype(str)).astype(object)
    if inter.items is None or "title" not in inter.items:
        return fallback
    titles = inter.items["title"].reindex(range(inter.n_items)).to_numpy(dtype=object)
    ok = np.array([isinstance(t, str) and t != "" for t in titles], dtype=bool)
    return np.where(ok, titles, fallback)


def find_user(user_ids: np.ndarray, raw_user, where: str = "this run's data") -> int:
    """The internal id of a raw user id, or an error that shows what the ids look like."""
    hit = np.flatnonzero(np.asarray(user_ids).astype(str) == str(raw_user))
    if len(hit) == 0:
        from recviz.errors import RecvizError

        examples = ", ".join(repr(str(u)) for u in user_ids[:3])
        raise RecvizError(f"user {str(raw_user)!r} is not in {where} ({len(user_ids)} users, e.g. {examples})",
                          fix="use a raw user id from the dataset the run was trained on")
    return int(hit[0])


def top_list(items: np.ndarray, scores: np.ndarray, item_ids: np.ndarray, titles: np.ndarray,
             held_out=None) -> pd.DataFrame:
    """One user's recommendations as people read them: rank, item (raw id), title, score and,
    given the user's held-out items, whether each one is among them. Padding (a -inf score, when
    the user has fewer unseen items than asked for) is dropped."""
    keep = np.isfinite(scores)
    items, scores = np.asarray(items)[keep], np.asarray(scores)[keep]
    out = pd.DataFrame({"rank": np.arange(1, len(items) + 1), "item": np.asarray(item_ids)[items],
                        "title": np.asarray(titles)[items], "score": scores})
    if held_out is not None:
        out["held out"] = np.isin(items, np.asarray(list(held_out), dtype=np.int64))
    return out


def user_history(inter: Interactions, user: int, split=None) -> pd.DataFrame:
    """One user's rows, oldest first (file order breaks ties and stands in for missing times).

    Columns: item (raw id), title, genres, then rating / behavior / date where the data has
    them, then `part` when a split is given: "train", "valid" or "test" by row index into
    `split.data` (which must be this very table). A row in no part is "unused": e.g. an earlier
    click on the item that became the user's test item (holding out a pair removes all its rows
    from train), or a cold user's held-out rows under the ratio protocol."""
    if not 0 <= user < inter.n_users:
        raise ValueError(f"user {user} is not in this dataset (0..{inter.n_users - 1})")
    rows = np.flatnonzero(inter.user == user)
    if inter.timestamp is not None:
        rows = rows[np.argsort(inter.timestamp[rows], kind="stable")]
    items = inter.item[rows]
    out = pd.DataFrame({"item": inter.item_ids[items], "title": item_titles(inter)[items]})
    genres = None
    if inter.items is not None and "genres" in inter.items:
        genres = inter.items["genres"].reindex(items).fillna("").to_numpy(dtype=object)
    out["genres"] = genres if genres is not None else ""
    if inter.rating is not None:
        out["rating"] = inter.rating[rows].astype(float)
    if inter.behavior is not None:
        out["behavior"] = np.asarray(inter.behaviors, dtype=object)[inter.behavior[rows]]
    if inter.timestamp is not None:
        out["date"] = pd.to_datetime(inter.timestamp[rows], unit="s")
    if split is not None:
        out["part"] = _parts(split, len(inter), rows)
    return out


def _parts(split, n_rows: int, rows: np.ndarray) -> np.ndarray:
    """The part (PARTS or UNUSED, an object array) of each of `rows` of `split.data`. One byte per
    row of the data marks the parts, not an object per row: a user's history on a 100M-row log."""
    if len(split.data) != n_rows:
        raise ValueError(f"the split was drawn on {len(split.data):,} rows, this table has {n_rows:,}: "
                         "pass the split of this very dataset")
    code = np.full(n_rows, len(PARTS), dtype=np.int8)
    for c, part_rows in enumerate((split.train_rows, split.valid_rows, split.test_rows)):
        code[np.asarray(part_rows, dtype=np.int64)] = c
    return np.asarray((*PARTS, UNUSED), dtype=object)[code[np.asarray(rows, dtype=np.int64)]]


def versions_table(versions: list[dict], runs: list) -> pd.DataFrame:
    """A saved dataset's versions, oldest first, and the runs trained on each ([version, saved,
    users, items, interactions, runs]); `runs` are store runs (with `.id` and `.config`). A run
    stored before versions existed has no pinned version and is listed under none."""
    import time as _time

    rows = []
    for v in versions:
        used = [f"#{r.id}" for r in runs if r.config.data_version == v["fingerprint"]]
        rows.append({"version": f"v{v['version']}", "saved": _time.strftime("%Y-%m-%d %H:%M", _time.localtime(v["saved_at"])),
                     "users": v["users"], "items": v["items"], "interactions": v["interactions"],
                     "runs": ", ".join(used) or "—"})
    return pd.DataFrame(rows, columns=["version", "saved", "users", "items", "interactions", "runs"])
