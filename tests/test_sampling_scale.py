"""Candidate sampling at scale: the distribution is exactly uniform without replacement over each
user's unseen items, memory stays far below users × items, and splits stored by earlier versions
keep their candidates."""

import itertools
import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from recviz.data.sampling import SeenItems, _FEW, sample_candidates, sample_negatives
from recviz.data.split import Split
from recviz.errors import ProtocolError
from recviz.eval.protocols import evaluate
from recviz.models.itempop import ItemPop
from tests.helpers import random_interactions

FIXTURES = Path(__file__).parent / "fixtures"


def subset_counts(rows: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """How often each n-subset of `universe` occurs among the (sorted) rows, in a fixed order."""
    index = {s: k for k, s in enumerate(itertools.combinations(universe.tolist(), rows.shape[1]))}
    counts = np.zeros(len(index), np.int64)
    keys, n = np.unique(rows, axis=0, return_counts=True)
    for key, c in zip(map(tuple, keys.tolist()), n):
        counts[index[key]] += c  # KeyError: a row outside the universe (a seen item)
    return counts


@pytest.mark.parametrize("n", [3, 5])
def test_each_subset_of_unseen_items_is_equally_likely(n):
    """Two users of 20 items, interleaved in one call: A saw 5 (15 unseen), B saw 14 (6 unseen).
    n = 3 draws A by rejection and B by random keys; n = 5 draws both by keys. Every n-subset of a
    user's unseen items must be equally likely (chi-square over all C(unseen, n) subsets: this
    covers the single items and the pairs too)."""
    n_items = 20
    seen_a = np.array([0, 3, 7, 8, 19])
    seen_b = np.array([1, 2, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17])
    seen = SeenItems(np.r_[np.zeros(5, int), np.ones(14, int)], np.r_[seen_a, seen_b], 2, n_items)
    assert (15 > _FEW * n) == (n == 3) and 6 <= _FEW * n  # both paths are exercised
    users = np.tile([0, 1], 40_000)
    got = sample_candidates(users, seen, n, np.random.default_rng(11))
    assert got.shape == (len(users), n)
    for user, seen_items in ((0, seen_a), (1, seen_b)):
        rows = got[users == user]
        unseen = np.setdiff1d(np.arange(n_items), seen_items)
        counts = subset_counts(rows, unseen)
        assert len(counts) == math.comb(len(unseen), n)
        assert stats.chisquare(counts).pvalue > 1e-3, (user, n)
        # each unseen item with probability n / unseen, each seen one never
        share = np.bincount(rows.ravel(), minlength=n_items) / len(rows)
        assert (share[seen_items] == 0).all()
        sd = math.sqrt(n / len(unseen) * (1 - n / len(unseen)) / len(rows))
        assert np.abs(share[unseen] - n / len(unseen)).max() < 5 * sd


def test_rows_are_distinct_unseen_and_sorted_for_users_of_every_density():
    rng = np.random.default_rng(0)
    n_users, n_items, n = 400, 300, 25
    counts = rng.integers(0, n_items - n + 1, n_users)
    counts[:3] = [0, n_items - n, n_items - n - 1]  # nothing seen; exactly n left; n + 1 left
    user = np.repeat(np.arange(n_users), counts)
    item = np.concatenate([rng.permutation(n_items)[:c] for c in counts])
    seen = SeenItems(user, item, n_users, n_items)
    users = rng.permutation(np.repeat(np.arange(n_users), 3))
    got = sample_candidates(users, seen, n, rng)
    assert got.dtype == np.int64 and got.shape == (len(users), n)
    assert ((got >= 0) & (got < n_items)).all()
    assert (np.diff(got, axis=1) > 0).all()  # sorted and distinct
    assert not seen.contains(np.repeat(users, n), got.ravel()).any()
    only = np.setdiff1d(np.arange(n_items), item[user == 1])
    assert (got[users == 1] == only).all()  # exactly n unseen: all of them


def test_nth_unseen_numbers_the_unseen_items_in_order():
    rng = np.random.default_rng(1)
    n_users, n_items = 50, 40
    counts = rng.integers(0, n_items, n_users)
    user = np.repeat(np.arange(n_users), counts)
    item = np.concatenate([rng.permutation(n_items)[:c] for c in counts])
    seen = SeenItems(np.r_[user, user[:30]], np.r_[item, item[:30]], n_users, n_items)  # repeats
    for u in range(n_users):
        unseen = np.setdiff1d(np.arange(n_items), item[user == u])
        assert np.array_equal(seen.nth_unseen(np.full(len(unseen), u), np.arange(len(unseen))), unseen)


def test_too_few_unseen_items_is_a_protocol_error_with_a_fix():
    seen = SeenItems(np.zeros(8, int), np.arange(8), 2, 10)
    with pytest.raises(ProtocolError, match="user #0 has only 2 items") as err:
        sample_candidates(np.array([1, 0]), seen, 3, np.random.default_rng(0))
    assert "--candidates 2" in err.value.fix
    assert sample_candidates(np.array([0, 1]), seen, 0, np.random.default_rng(0)).shape == (2, 0)
    assert sample_candidates(np.zeros(0, int), seen, 3, np.random.default_rng(0)).shape == (0, 3)


def test_negatives_of_dense_users_fall_back_to_an_exact_draw():
    """User 0 saw 998 of 1000 items; with no rejection round every negative comes from the
    fallback, which must give the two unseen items and only them, about equally often."""
    seen = SeenItems(np.r_[np.zeros(998, int), [1]], np.r_[np.arange(2, 1000), [0]], 2, 1000)
    users = np.r_[np.zeros(2000, int), np.ones(10, int)]
    neg = sample_negatives(users, seen, np.random.default_rng(0), max_rounds=0)
    assert set(neg[:2000]) == {0, 1} and 900 < (neg[:2000] == 0).sum() < 1100
    assert not seen.contains(users, neg).any()
    assert not seen.contains(users, sample_negatives(users, seen, np.random.default_rng(1))).any()


def test_candidates_for_50k_users_of_a_million_items_stay_small():
    """50k users × 1M items: a users × items float32 array would be 200 GB. With ~40 seen items a
    user the whole draw (index included) must stay under 200 MB."""
    n_users, n_items, n = 50_000, 1_000_000, 100
    rng = np.random.default_rng(0)
    user = np.repeat(np.arange(n_users), rng.integers(20, 60, n_users))
    item = rng.integers(0, n_items, len(user))
    tracemalloc.start()
    try:
        seen = SeenItems(user, item, n_users, n_items)
        got = sample_candidates(np.arange(n_users), seen, n, rng)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"
    assert got.shape == (n_users, n) and (np.diff(got, axis=1) > 0).all()
    assert not seen.contains(np.repeat(np.arange(n_users), n), got.ravel()).any()


def test_a_split_stored_by_an_earlier_version_keeps_its_candidates():
    """tests/fixtures/split-92487f6.npz was drawn at 92487f6 (random keys over every item) on
    random_interactions(n_users=40, n_items=120, seed=7), loo, seed 3, 20 candidates. It loads as
    stored and gives the numbers it gave then; a fresh draw now samples differently."""
    data = random_interactions(n_users=40, n_items=120, seed=7)
    old = Split.load(FIXTURES / "split-92487f6.npz", data)
    assert old.test_candidates.shape == (len(old.test_rows), 20)
    assert old.test_candidates[0, :4].tolist() == [8, 11, 27, 29]
    pop = ItemPop()
    pop.fit(old)
    metrics = evaluate(pop, old, "test").metrics
    assert (metrics["HR@10"], metrics["NDCG@10"]) == (0.494048, 0.248758)
