"""The Data page's numbers: what a dataset looks like before anything is trained on it.

Counts are over *rows* (interactions), not distinct pairs: a multi-behaviour dataset where a user
clicked and then bought an item contributes two rows, and that is what the long tail should show.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recviz.analysis.downsample import MAX_POINTS, curve_positions
from recviz.data.interactions import Interactions


def rating_histogram(inter: Interactions) -> pd.DataFrame | None:
    """How often each rating value occurs, ascending by rating; None for implicit data (no
    ratings) so the page can say so instead of drawing an empty chart."""
    if inter.rating is None or len(inter) == 0:
        return None
    values, counts = np.unique(inter.rating, return_counts=True)
    return pd.DataFrame({"rating": values.astype(float), "count": counts.astype(np.int64)})


def activity(inter: Interactions, by: str = "user", max_points: int | None = MAX_POINTS) -> pd.DataFrame:
    """Interactions per user (or item), most active first, with rank 1..n: the long-tail plot.

    Users/items with no rows (possible after filtering a table in place) are kept with 0 so the
    tail is honest about them; a log-scale chart simply does not draw zeros. A curve longer than
    `max_points` keeps only the ranks `downsample.curve_positions` picks (exact values, the
    shape kept); None keeps every rank."""
    if by not in ("user", "item"):
        raise ValueError(f"by must be 'user' or 'item', not {by!r}")
    ids, n = (inter.user, inter.n_users) if by == "user" else (inter.item, inter.n_items)
    counts = np.sort(np.bincount(ids, minlength=n))[::-1]
    keep = np.arange(n) if max_points is None else curve_positions(counts, max_points)
    return pd.DataFrame({"rank": keep + 1, "interactions": counts[keep].astype(np.int64)})


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


def item_titles(inter: Interactions, items=None) -> np.ndarray:
    """A title for every internal item id, or for the ids `items` only ("item <raw id>" where the
    data has none): what charts and tables show instead of bare ids. A page showing 50 rows asks
    for those 50, not for all 400,000 items of a large dataset."""
    idx = np.arange(inter.n_items) if items is None else np.asarray(items, dtype=np.int64)
    fallback = np.char.add("item ", np.asarray(inter.item_ids)[idx].astype(str)).astype(object)
    if inter.items is None or "title" not in inter.items:
        return fallback
    titles = inter.items["title"].reindex(idx).to_numpy(dtype=object)
    ok = pd.Series(titles).map(lambda t: isinstance(t, str) and t != "").to_numpy(dtype=bool)
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


@dataclass(frozen=True)
class Overview:
    """Everything the Data page shows of a dataset, all of it small whatever the dataset's size
    (the long tails are downsampled): computed once per dataset version and cached by the page,
    so a rerun of the page reads no column of the log again."""
    stats: dict
    ratings: pd.DataFrame | None
    behaviors: pd.DataFrame | None
    users: pd.DataFrame  # the users' long tail, at most ~max_points ranks
    items: pd.DataFrame
    summary: pd.DataFrame


def overview(inter: Interactions, max_points: int = MAX_POINTS) -> Overview:
    """The Data page's numbers and chart frames for `inter` (see `Overview`)."""
    return Overview(stats=inter.stats(), ratings=rating_histogram(inter), behaviors=behavior_mix(inter),
                    users=activity(inter, "user", max_points), items=activity(inter, "item", max_points),
                    summary=summary_table(inter))
