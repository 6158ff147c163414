"""Preparation steps on tiny hand-made tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from recviz.data.interactions import GivenTest, Interactions
from recviz.data.prepare import dedup, kcore, reindex, threshold
from recviz.errors import DataError


def make(rows, items=None, **kw):
    """rows: (user, item[, rating[, timestamp]]) tuples with raw ids."""
    cols = ["user", "item", "rating", "timestamp"][: len(rows[0])]
    return Interactions.from_frame(pd.DataFrame(rows, columns=cols), items=items, **kw)


def raw_pairs(inter):
    return sorted(zip(inter.user_ids[inter.user], inter.item_ids[inter.item]))


# ---- k-core -----------------------------------------------------------------------------------
def test_kcore_cascade_removing_an_item_drops_a_user():
    # item c has 1 row → removed; then user z has only 1 row (item a) → removed.
    inter = make([("x", "a"), ("x", "b"), ("y", "a"), ("y", "b"), ("z", "a"), ("z", "c")])
    out = kcore(inter, min_user=2, min_item=2)
    assert raw_pairs(out) == [("x", "a"), ("x", "b"), ("y", "a"), ("y", "b")]
    assert list(out.user_ids) == ["x", "y"] and list(out.item_ids) == ["a", "b"]
    assert out.user.max() == 1 and out.item.max() == 1  # contiguous ids
    rec = out.meta["filters"][-1]
    assert rec["op"] == "kcore" and rec["passes"] == 2
    assert rec["before"] == {"users": 3, "items": 3, "rows": 6}
    assert rec["after"] == {"users": 2, "items": 2, "rows": 4}
    assert "filters" not in inter.meta  # the input is untouched


def test_kcore_keeps_item_table_aligned():
    items = pd.DataFrame({"title": ["A", "B", "C"]}, index=["a", "b", "c"])
    inter = make([("x", "a"), ("x", "b"), ("y", "b"), ("y", "c"), ("z", "b"), ("z", "c")], items=items)
    out = kcore(inter, min_user=1, min_item=2)
    assert list(out.item_ids) == ["b", "c"]
    assert [out.item_title(i) for i in range(out.n_items)] == ["B", "C"]


def test_kcore_that_empties_everything_says_what_remained():
    inter = make([("x", "a"), ("y", "b"), ("y", "c")])
    with pytest.raises(DataError) as err:
        kcore(inter, min_user=3, min_item=3)
    msg = str(err.value)
    assert "2 users/3 items" in msg and "0 users/0 items" in msg and "lower" in msg


def test_kcore_drops_given_test_that_loses_ids_and_keeps_a_consistent_one():
    rows = [("x", "a"), ("x", "b"), ("y", "a"), ("y", "b"), ("z", "a"), ("z", "c")]
    inter = make(rows)
    # negatives reference item c (id 2), which the 2-core removes → test set dropped with a note.
    inter.given_test = GivenTest(np.array([0, 1]), np.array([0, 1]), np.array([[2], [2]]))
    out = kcore(inter, min_user=2, min_item=2)
    assert out.given_test is None and "dropped" in out.meta["notes"][0]
    # With only surviving ids it is renumbered along with everything else.
    inter.given_test = GivenTest(np.array([1]), np.array([0]), np.array([[1]]))
    out = kcore(inter, min_user=2, min_item=2)
    assert out.given_test is not None and "notes" not in out.meta
    assert out.user_ids[out.given_test.user[0]] == "y"
    assert out.item_ids[out.given_test.negatives[0, 0]] == "b"


# ---- reindex / threshold ----------------------------------------------------------------------
def test_reindex_drops_unused_ids_but_keeps_given_test_negatives():
    inter = make([("x", "a"), ("y", "b"), ("y", "c"), ("z", "d")])
    inter.given_test = GivenTest(np.array([1]), np.array([1]), np.array([[3]]))  # y; b vs d
    sub = reindex(inter.subset(np.array([True, True, True, False])))  # z and its item d unused
    assert list(sub.user_ids) == ["x", "y"]
    assert list(sub.item_ids) == ["a", "b", "c", "d"]  # d kept: it is a negative
    assert sub.item_ids[sub.given_test.negatives[0, 0]] == "d"


def test_threshold_keeps_high_ratings_and_reindexes():
    inter = make([("x", "a", 5.0), ("x", "b", 2.0), ("y", "b", 4.0), ("z", "c", 1.0)])
    out = threshold(inter, 4)
    assert raw_pairs(out) == [("x", "a"), ("y", "b")]
    assert out.n_users == 2 and out.n_items == 2 and out.rating.min() >= 4
    assert out.meta["filters"][-1]["op"] == "threshold"


def test_threshold_errors_explain_the_fix():
    with pytest.raises(DataError, match="no ratings"):
        threshold(make([("x", "a")]), 4)
    with pytest.raises(DataError, match="choose a threshold ≤ 3"):
        threshold(make([("x", "a", 3.0)]), 4)


# ---- dedup ------------------------------------------------------------------------------------
def test_dedup_keeps_latest_then_later_row_on_ties():
    inter = make([
        ("x", "a", 1.0, 10),  # older
        ("x", "a", 2.0, 30),  # latest → wins for keep="last"
        ("y", "b", 3.0, 5),   # tie on timestamp…
        ("y", "b", 4.0, 5),   # …later row wins for keep="last"
        ("x", "a", 5.0, 20),
    ])
    last = dedup(inter, keep="last")
    assert sorted(last.rating.tolist()) == [2.0, 4.0]
    first = dedup(inter, keep="first")
    assert sorted(first.rating.tolist()) == [1.0, 3.0]
    assert last.meta["filters"][-1] == {"op": "dedup", "keep": "last", "keys": ["user", "item"],
                                        "removed": 3}


def test_dedup_without_timestamps_uses_table_order_and_preserves_order():
    inter = make([("y", "b", 1.0), ("x", "a", 2.0), ("y", "b", 3.0)])
    assert dedup(inter).rating.tolist() == [2.0, 3.0]
    assert dedup(inter, keep="first").rating.tolist() == [1.0, 2.0]


def test_dedup_rejects_bad_arguments():
    inter = make([("x", "a")])
    with pytest.raises(DataError):
        dedup(inter, keep="middle")
    with pytest.raises(DataError, match="behaviour"):
        dedup(inter, keys=("user", "item", "behavior"))
