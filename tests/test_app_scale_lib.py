"""The library under the app at scale: downsampled long tails, the id search, the paged history
and the bounded embedding map — each on a tiny case with a known answer, and its bound on a
large one."""

import numpy as np
import pandas as pd
import pytest

from recviz import charts
from recviz.analysis import dataset, downsample, embeddings, history
from recviz.analysis.lookup import IdIndex
from recviz.data.interactions import Interactions
from recviz.data.split import make_split
from tests.helpers import frame, random_interactions


# ---- downsampling ------------------------------------------------------------------------------------
def test_a_short_curve_keeps_every_point():
    assert downsample.curve_positions(np.array([5, 3, 1]), 4).tolist() == [0, 1, 2]


def test_a_long_curve_keeps_log_and_linear_ranks_and_where_it_reaches_zero():
    values = np.array([9, 8, 7, 6, 5, 4, 3, 0, 0, 0])
    # log-spaced ranks 1, 3, 10 → positions 0, 2, 9; evenly spaced 0, 4, 9; last non-zero 6, first zero 7
    assert downsample.curve_positions(values, 6).tolist() == [0, 2, 4, 6, 7, 9]
    with pytest.raises(ValueError):
        downsample.curve_positions(values, 3)


def test_a_two_million_point_curve_is_bounded_and_keeps_its_shape():
    n, m = 2_000_000, 1_000
    values = np.sort(np.random.default_rng(0).zipf(1.6, n))[::-1]
    values[-1000:] = 0  # a tail of zeros: the point where the log axis stops is kept
    keep = downsample.curve_positions(values, m)
    assert len(keep) <= m + 4 and keep[0] == 0 and keep[-1] == n - 1 and (np.diff(keep) > 0).all()
    assert {n - 1001, n - 1000} <= set(keep.tolist())
    # no gap wider than the even spacing; beyond the first ranks, none wider than the log spacing
    assert np.diff(keep).max() <= (n - 1) / (m - m // 2 - 1) + 1
    ranks = keep + 1
    big = ranks[:-1] >= 1_000
    assert (ranks[1:][big] / ranks[:-1][big]).max() <= n ** (1 / (m // 2 - 1)) * 1.01


def test_the_long_tail_of_a_large_dataset_is_a_bounded_figure_with_exact_values():
    n_users, n_items, rows = 20_000, 300_000, 1_000_000
    rng = np.random.default_rng(1)
    item = np.minimum(rng.zipf(1.3, rows) - 1, n_items - 1)
    data = Interactions.from_codes(rng.integers(0, n_users, rows), item, np.arange(n_users).astype(str),
                                   np.arange(n_items).astype(str))
    tail = dataset.activity(data, "item")
    assert len(tail) <= downsample.MAX_POINTS + 4
    counts = np.sort(np.bincount(item, minlength=n_items))[::-1]
    assert (tail["interactions"].to_numpy() == counts[tail["rank"].to_numpy() - 1]).all()
    assert len(dataset.activity(data, "item", max_points=None)) == n_items
    fig = charts.long_tail(dataset.activity(data, "user"), tail)
    assert len(fig.to_json()) < 100_000  # drawn point by point it is megabytes


def test_the_overview_holds_the_data_page_in_small_frames():
    data = frame([("a", "x", 1), ("a", "y", 2), ("b", "x", 3)])
    view = dataset.overview(data)
    assert view.stats["interactions"] == 3 and view.ratings is None and view.behaviors is None
    assert view.users.to_dict("list") == {"rank": [1, 2], "interactions": [2, 1]}
    assert view.items["interactions"].tolist() == [2, 1]
    assert dict(zip(view.summary["statistic"], view.summary["value"]))["users"] == "2"


# ---- the id search ------------------------------------------------------------------------------------
IDS = np.array(["12", "3", "120", "1", "7", "1200", "b1"], dtype=object)


def test_search_finds_the_exact_id_first_then_ids_starting_with_it():
    index = IdIndex.build(IDS)
    found = index.search("12")
    assert IDS[found.ids].tolist() == ["12", "120", "1200"] and found.total == 3 and found.exact
    found = index.search(" 1 ", limit=2)  # spaces ignored; at most `limit`, all counted
    assert IDS[found.ids].tolist() == ["1", "12"] and found.total == 4 and found.exact
    found = index.search("b")
    assert IDS[found.ids].tolist() == ["b1"] and not found.exact
    assert index.search("x").total == 0 and len(index.search("x").ids) == 0
    assert index.search("120000000").total == 0  # longer than any id: no match, not a cut-off one
    assert index.search("").total == len(IDS) and len(index.search("", limit=3).ids) == 3


def test_search_among_many_ids_returns_a_bounded_list_in_internal_ids():
    ids = np.random.default_rng(0).permutation(200_000).astype(str)
    index = IdIndex.build(ids)
    found = index.search("4242", limit=5)
    assert found.exact and ids[found.ids[0]] == "4242" and len(found.ids) == 5
    assert found.total == 1 + 10  # 4242 and 42420..42429 below 200,000
    assert all(ids[i].startswith("4242") for i in found.ids)


# ---- paging --------------------------------------------------------------------------------------------
def test_page_bounds_clamp_to_the_last_page_and_the_first():
    assert history.page_bounds(120, 0, 50) == history.Page(0, 3, 0, 50, 120, 50)
    assert history.page_bounds(120, 2, 50) == history.Page(2, 3, 100, 120, 120, 50)
    assert history.page_bounds(120, 9, 50).page == 2  # past the end: the last page
    assert history.page_bounds(120, -1, 50).page == 0
    assert history.page_bounds(0, 3, 50) == history.Page(0, 1, 0, 0, 0, 50)
    with pytest.raises(ValueError):
        history.page_bounds(10, 0, 0)


def test_a_history_page_is_that_slice_of_the_whole_history_with_and_without_the_index():
    data = random_interactions(n_users=30, n_items=80, per_user=(20, 40), seed=3)
    split = make_split(data, "loo", seed=0, n_candidates=10)
    index = history.RowIndex.build(data, split)
    for user in (0, 7, 29):
        whole = history.user_history(data, user, split)
        assert whole.equals(history.user_history(data, user, split, index=index))
        parts = []
        for page in range(history.page_bounds(len(whole), 0, 7).pages):
            shown, where = history.history_page(data, user, split, page, 7, index=index)
            assert len(shown) <= 7 and where.total == len(whole)
            parts.append(shown)
        assert pd.concat(parts, ignore_index=True).equals(whole)
        held = history.part_history(data, user, split, "test", index=index)
        assert held.reset_index(drop=True).equals(whole[whole["part"] == "test"].reset_index(drop=True))
        train_items = data.item[split.train_rows][data.user[split.train_rows] == user]
        assert sorted(history.part_items(data, user, split, "train", index=index)) == sorted(train_items)


def test_the_row_index_groups_rows_by_user_in_file_order():
    data = frame([("a", "x", 5), ("b", "x", 1), ("a", "y", 2), ("a", "z", 9)])
    index = history.RowIndex.build(data)
    assert index.rows(0).tolist() == [0, 2, 3] and index.rows(1).tolist() == [1]
    assert history.user_history(data, 0, index=index)["item"].tolist() == ["y", "x", "z"]  # oldest first


# ---- the embedding map --------------------------------------------------------------------------------
def test_the_embedding_map_keeps_every_highlighted_item_and_a_bounded_seeded_background():
    coords = np.random.default_rng(0).normal(size=(50_000, 2))
    titles = np.array([f"t{i}" for i in range(50_000)], dtype=object)
    df = embeddings.embedding_map(coords, titles, history_items=[1, 2], recommended_items=[3], held_out_items=[49_999],
                                  max_others=100)
    assert (df["role"] == "other").sum() == 100 and len(df) == 104
    assert dict(zip(df["item"], df["role"]))[49_999] == "held-out"
    assert (df["x"].to_numpy() == coords[df["item"], 0]).all() and (df["title"] == "t" + df["item"].astype(str)).all()
    again = embeddings.embedding_map(coords, titles, [1, 2], [3], [49_999], max_others=100)
    assert again.equals(df)
    assert len(embeddings.embedding_map(coords[:10], titles[:10], [1], max_others=100)) == 10


def test_the_paired_differences_chart_is_binned_with_known_counts_and_bounded():
    fig = charts.paired_differences(np.array([-1.0, 0.0, 0.0, 1.0]), "A", "B", "HR@10")
    bars = fig.data[0]
    assert len(bars.x) == charts.PAIRED_BINS and sum(bars.y) == 4
    assert bars.y[0] == 1 and bars.y[-1] == 1 and bars.y[charts.PAIRED_BINS // 2] == 2  # -1, 0 twice, +1
    many = charts.paired_differences(np.random.default_rng(0).normal(size=1_000_000), "A", "B", "HR@10")
    assert len(many.data[0].x) == charts.PAIRED_BINS and sum(many.data[0].y) == 1_000_000
    assert len(many.to_json()) < 20_000
