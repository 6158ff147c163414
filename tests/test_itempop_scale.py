"""ItemPop at scale: distinct counts by sorting, the same popularity as the np.unique version and a
fit that gathers two columns in bounded memory; one user's known items without indexing everyone's."""

import tracemalloc

import numpy as np
import pytest

from recviz.data.arrays import count_distinct
from recviz.data.interactions import Interactions
from recviz.data.load import load
from recviz.data.split import make_split, target_rows, target_train
from recviz.eval.protocols import evaluate
from recviz.models.itempop import ItemPop
from tests.helpers import SHARED_DATA, needs_ml100k, random_interactions


def old_itempop(split) -> np.ndarray:
    """ItemPop's popularity before this change (8db3eed), verbatim: np.unique of the train pairs."""
    train = target_train(split)
    pairs = np.unique(train.user.astype(np.int64) * train.n_items + train.item)
    return np.bincount(pairs % train.n_items, minlength=train.n_items).astype(np.float32)


# ---- distinct counts ------------------------------------------------------------------------------
def test_count_distinct_by_hand():
    # item 0: users 2, 0, 2 (twice) → 2 distinct; item 1: none; item 2: user 1 three times → 1
    item = np.array([0, 2, 0, 2, 0, 2], np.int32)
    user = np.array([2, 1, 0, 1, 2, 1], np.int32)
    assert count_distinct(item, user, 3, 3).tolist() == [2, 0, 1]
    assert count_distinct(item[:0], user[:0], 3, 3).tolist() == [0, 0, 0]
    assert item.tolist() == [0, 2, 0, 2, 0, 2]  # the inputs are not sorted in place


def test_count_distinct_equals_np_unique_on_random_pairs():
    rng = np.random.default_rng(3)
    user, item = rng.integers(0, 500, 20_000), rng.integers(0, 300, 20_000)
    keys = np.unique(user * 300 + item)
    assert np.array_equal(count_distinct(item, user, 300, 500), np.bincount(keys % 300, minlength=300))


# ---- ItemPop ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [None, "buy"])
def test_itempop_is_unchanged_with_and_without_a_target(target):
    split = make_split(random_interactions(n_users=80, n_items=60, seed=2, behaviors=True), "loo",
                       n_candidates=10, target=target, cache=False)
    model = ItemPop()
    model.fit(split)
    assert model.popularity.dtype == np.float32
    assert np.array_equal(model.popularity, old_itempop(split))
    assert np.array_equal(target_rows(split), np.flatnonzero(np.isin(np.arange(len(split.data)), split.train_rows)
                                                             & ((split.data.behavior == split.data.behavior_code(target))
                                                                if target else True)))


def test_itempop_fit_gathers_two_columns_and_counts_in_place():
    """1M train rows: the fit holds the two gathered int32 columns, one int64 key, the radix sort's
    int64 scratch and a flag per row (≈ 25 bytes a row). The old fit copied every column of train first (user, item, timestamp) and
    then built the key, its products and numpy's hash table on top: 41 bytes a row traced."""
    rng = np.random.default_rng(0)
    n_users, n_items, rows = 20_000, 50_000, 1_000_000
    ids = lambda n: np.arange(n).astype(str)  # noqa: E731
    data = Interactions.from_codes(rng.integers(0, n_users, rows, dtype=np.int32),
                                   (rng.zipf(1.3, rows) % n_items).astype(np.int32), ids(n_users),
                                   ids(n_items), timestamp=rng.integers(0, 10**6, rows), name="pop")
    split = make_split(data, "loo", n_candidates=5, cache=False)
    model = ItemPop()
    tracemalloc.start()
    try:
        model.fit(split)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(model.popularity, old_itempop(split))
    assert peak < 28 * len(split.train_rows) + 16 * n_items, f"{peak / len(split.train_rows):.1f} bytes a row"


@pytest.mark.slow
@pytest.mark.realdata
@needs_ml100k
@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_itempop_on_ml100k_is_bit_equal_to_the_np_unique_version(protocol):
    split = make_split(load(str(SHARED_DATA / "ml-100k")), protocol, n_candidates=100, cache=False)
    model = ItemPop()
    model.fit(split)
    assert np.array_equal(model.popularity, old_itempop(split))
    m = evaluate(model, split, "test").metrics
    old = ItemPop()
    old.set_state({"popularity": old_itempop(split)}, split.data.n_users, split.data.n_items)
    assert m == evaluate(old, split, "test").metrics


# ---- one user's top-N -------------------------------------------------------------------------------
def test_known_before_for_some_users_indexes_only_theirs():
    split = make_split(random_interactions(n_users=30, n_items=50, seed=4), "loo", n_candidates=5, cache=False)
    for part in ("valid", "test"):
        every, some = split.known_before(part), split.known_before(part, users=[3, 7])
        assert set(np.flatnonzero(some.count(np.arange(30)))) == {3, 7}
        for u in (3, 7):
            assert some.rows(np.array([u]))[1].tolist() == every.rows(np.array([u]))[1].tolist()
        assert len(some.keys) == every.count(np.array([3, 7])).sum() < len(every.keys)
