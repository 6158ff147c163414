"""The Recommendations page's per-run view (`analysis.runview`): built once, then one user's known
items, held-out items and on-demand list read from the row index, equal to what the split's
whole-log views (`known_before`, `held_out`) give."""

import numpy as np
import pytest

from recviz.analysis import history, runview
from recviz.data.interactions import Interactions
from recviz.data.split import make_split
from recviz.experiments import topn
from recviz.models.itempop import ItemPop


def repeated_log() -> Interactions:
    """12 users × 30 items; every user repeats some items (several rows of one pair, in and out of
    order), so a held-out pair's earlier rows are in no part and train pairs have several rows."""
    rng = np.random.default_rng(5)
    users, items, times = [], [], []
    for u in range(12):
        own = rng.choice(30, 6 + u % 4, replace=False)
        rows = np.concatenate([own, rng.choice(own, 4)])  # 4 repeats of the user's own items
        users += [u] * len(rows)
        items += rows.tolist()
        times += rng.permutation(len(rows)).tolist()
    return Interactions.from_codes(np.array(users), np.array(items), np.array([f"u{u}" for u in range(12)]),
                                   np.array([f"i{i}" for i in range(30)]), timestamp=np.array(times) + 1000)


def test_the_hand_made_log_has_repeats_and_valid_rows():
    data = repeated_log()
    split = make_split(data, "loo", seed=0, n_candidates=5, cache=False)
    pairs = data.user.astype(np.int64) * 30 + data.item
    assert len(np.unique(pairs)) < len(pairs) and len(split.valid_rows) == 12
    assert (history.RowIndex.build(data, split).parts == len(history.PARTS)).any()  # "unused" rows exist


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_known_items_from_the_row_index_equal_known_before(protocol):
    data = repeated_log()
    split = make_split(data, protocol, seed=1, n_candidates=5, cache=False)
    assert len(split.valid_rows) > 0
    index = history.RowIndex.build(data, split)
    for user in range(data.n_users):
        mine = history.known_items(data, user, index)
        theirs = split.known_before("test", users=[user])
        assert np.array_equal(mine.keys, theirs.keys) and np.array_equal(mine.indptr, theirs.indptr)
        assert len(mine.keys) > 0


def test_known_items_need_an_index_with_parts():
    data = repeated_log()
    with pytest.raises(ValueError, match="with the split"):
        history.known_items(data, 0, history.RowIndex.build(data))


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_the_view_gives_held_items_and_the_unbounded_list_without_a_whole_log_mask(protocol, monkeypatch):
    data = repeated_log()
    split = make_split(data, protocol, seed=2, n_candidates=5, cache=False)
    model = ItemPop()
    model.fit(split)
    every = topn.lists(model, split, np.arange(data.n_users), 5, seed=3)  # what an unbounded save stores
    view = runview.RunView.build(split)
    held_users, held_items = split.held_out("test")
    assert np.array_equal(view.test_users, np.unique(held_users))
    stored = {"users": np.array([0, 4]), "items": every[0][[0, 4]], "scores": every[1][[0, 4]]}
    monkeypatch.setattr(split, "known_before", lambda *a, **k: pytest.fail("masked the whole log"))
    made = []
    for user in range(data.n_users):
        assert sorted(view.held_items(user)) == sorted(held_items[held_users == user])
        items, scores = view.user_list(stored, user, 3, lambda u=user: made.append(u) or model)
        assert np.array_equal(items, every[0][user]) and np.array_equal(scores, every[1][user])
    assert made == [u for u in range(data.n_users) if u not in (0, 4)]  # the model is asked for only when needed


def test_why_from_the_views_train_rows_equals_why_from_the_scan():
    from recviz.analysis import why

    from recviz.models.itemknn import ItemKNN

    data = repeated_log()
    split = make_split(data, "loo", seed=0, n_candidates=5, cache=False)
    model = ItemKNN()
    model.fit(split)
    view = runview.RunView.build(split)
    supported = 0
    for user in range(data.n_users):
        rows = view.train_rows(user)
        assert sorted(rows) == sorted(split.train_rows[data.user[split.train_rows] == user])
        top = topn.lists(model, split, [user], 5, seed=0)[0][0]
        mine = why.explain(model, split, user, top, train_rows=rows).frame
        assert mine.equals(why.explain(model, split, user, top).frame)
        supported += int((mine["supported by"] != "").sum())
    assert supported > 0  # neighbours in the history support some items: the rows are read
