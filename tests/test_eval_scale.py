"""Evaluation without users × items: scores come in blocks of users of bounded size, full ranking
keeps a running top-K, and the results are exactly those of a full sort."""

import tracemalloc

import numpy as np
import pytest

from recviz.data.interactions import Interactions
from recviz.data.sampling import SeenItems
from recviz.data.split import make_split
from recviz.eval import metrics, protocols
from recviz.eval.protocols import FunctionScorer, TopK, _top_k, evaluate, recommend
from recviz.models.base import Recommender
from recviz.models.itempop import ItemPop
from recviz.models import itempop
from tests.helpers import random_interactions


class Table(Recommender):
    """A model that only has `score_all` (scores[user] rows), recording the blocks it was asked."""
    spec = itempop.SPEC  # any declaration without options will do

    def __init__(self, table):
        super().__init__()
        self.table, self.asked = table, []

    def score_all(self, users):
        self.asked.append(len(users))
        return self.table[users]


def test_top_k_is_the_full_sort_with_ties_in_permutation_order():
    scores = np.array([[1.0, 1.0, 1.0, -np.inf, 2.0]], np.float32)
    perm = np.array([2, 0, 4, 3, 1])
    rank = np.argsort(perm)
    assert _top_k(scores, 3, rank).tolist() == [[4, 2, 0]]  # 4 best, then ties in perm order
    assert _top_k(scores, 5, rank).tolist() == [[4, 2, 0, 1, 3]]  # the excluded one last
    rng = np.random.default_rng(0)
    for _ in range(300):  # tie-heavy rows, excluded items, -0.0, every k
        b, n = rng.integers(1, 6), rng.integers(1, 40)
        s = rng.integers(-2, 3, (b, n)).astype(np.float32)
        s[rng.random((b, n)) < 0.3] = -np.inf
        s[rng.random((b, n)) < 0.05] = -0.0
        perm = rng.permutation(n)
        for k in sorted({0, 1, min(n, 3), n - 1, n}):
            assert np.array_equal(_top_k(s, k, np.argsort(perm)), metrics.top_k(s, k, perm)[:, :k])


def test_the_rank_keys_order_every_float_as_the_sort_does():
    """The int64 keys of `TopK` (float bits, then the tie rank): negative, subnormal, huge, ±0.0 and
    ±inf scores, and one TopK reused over blocks of different sizes, as `recommend` uses it."""
    values = np.array([-np.inf, -3e38, -1.5, -1e-40, -0.0, 0.0, 1e-40, 1e-30, 1.5, 3e38, np.inf], np.float32)
    rng = np.random.default_rng(1)
    perm = rng.permutation(30)
    top = TopK(np.argsort(perm), 12)
    for rows in (4, 1, 7, 2):
        s = rng.choice(values, (rows, 30))
        assert np.array_equal(top(s), metrics.top_k(s, 12, perm)[:, :12])


def test_recommend_by_hand_excludes_known_items_and_breaks_ties_by_the_seed():
    # 3 users × 6 items; user 1 knows items 0 and 4
    table = np.array([[5, 4, 4, 4, 1, 0],
                      [9, 3, 3, 2, 9, 3],
                      [0, 0, 0, 0, 0, 0]], np.float32)
    exclude = SeenItems(np.array([1, 1]), np.array([0, 4]), 3, 6)
    perm = np.random.default_rng(7).permutation(6)
    first = lambda tied: sorted(tied, key=list(perm).index)  # noqa: E731  tied items, perm order
    top, vals = recommend(Table(table), np.arange(3), exclude, 4, seed=7, with_scores=True)
    assert top[0].tolist() == [0, *first([1, 2, 3])]
    assert top[1].tolist() == [*first([1, 2, 5]), 3]
    assert top[2].tolist() == first(range(6))[:4]
    assert vals[1].tolist() == [3, 3, 3, 2]
    assert recommend(Table(table), np.arange(3), exclude, 10).shape == (3, 6)  # k > items
    assert recommend(Table(table), np.zeros(0, int), exclude, 4).shape == (0, 4)


def test_ties_never_favour_the_held_out_item():
    """A constant scorer: sampled, the held-out item gets the expected rank among its ties (HR@10 =
    10/51 exactly); full ranking, every user's list is the seeded permutation's order minus the
    items the user knows, whichever items are held out."""
    data = random_interactions(seed=3)
    const = FunctionScorer(lambda u, i: np.zeros(i.shape, np.float32), data.n_items)
    loo = evaluate(const, make_split(data, "loo", n_candidates=50, cache=False))
    assert loo.metrics["HR@10"] == pytest.approx(10 / 51, abs=1e-6)
    ratio = make_split(data, "ratio", seed=5, cache=False)
    users = np.unique(ratio.held_out("test")[0])
    known = ratio.known_before("test")
    top = recommend(const, users, known, 10, seed=ratio.seed)
    perm = np.random.default_rng(ratio.seed).permutation(data.n_items)
    for u, row in zip(users, top):
        assert row.tolist() == [i for i in perm if not known.contains(np.array([u]), np.array([i]))[0]][:10]


def test_default_score_goes_through_score_all_in_bounded_blocks(monkeypatch):
    monkeypatch.setattr(protocols, "SCORE_CELLS", 40)
    monkeypatch.setattr("recviz.models.base.SCORE_CELLS", 40)
    rng = np.random.default_rng(0)
    table = rng.random((30, 10)).astype(np.float32)
    model = Table(table)
    users = rng.integers(0, 30, 25)
    items = rng.integers(0, 10, (25, 7))
    assert np.array_equal(model.score(users, items), np.take_along_axis(table[users], items, axis=1))
    assert model.asked[0] == 1 and max(model.asked) * 10 <= 40 and sum(model.asked) == 25
    assert model.score(np.zeros(0, int), np.zeros((0, 7), int)).shape == (0, 7)


def test_itempop_scores_pairs_directly():
    s = make_split(random_interactions(seed=4), "loo", n_candidates=20, cache=False)
    pop = ItemPop()
    pop.fit(s)
    users, items = np.arange(5), np.arange(35).reshape(5, 7)
    assert np.array_equal(pop.score(users, items), np.take_along_axis(pop.score_all(users), items, axis=1))


def wide_data(n_users=600, n_items=500_000, per_user=20, seed=0) -> Interactions:
    rng = np.random.default_rng(seed)
    user = np.repeat(np.arange(n_users), per_user)
    item = rng.integers(0, n_items, len(user))
    ids = lambda n: np.arange(n).astype(str)  # noqa: E731  most items never occur: a long tail
    return Interactions.from_codes(user, item, ids(n_users), ids(n_items),
                                   timestamp=rng.integers(0, 10**6, len(user)), name="wide")


@pytest.mark.parametrize("protocol", ["ratio", "loo"])
def test_evaluating_600_users_of_500k_items_stays_small(protocol):
    """600 users × 500k items: a users × items float32 array is 1.2 GB. Full ranking (ratio) and the
    sampled protocol (loo, through the default `score` of a model that only has `score_all`) must
    stay under 150 MB traced, and the scores of every user must have been made."""
    data = wide_data()
    split = make_split(data, protocol, n_candidates=100, cache=False)

    base = (np.arange(data.n_items) * 7919 % 1000).astype(np.float32)  # many ties: 1000 values a row

    class Hashed(Recommender):
        spec = itempop.SPEC
        made = 0

        def score_all(self, users):
            self.made += len(users)
            return base[None, :] + (users % 7)[:, None].astype(np.float32)

    model = Hashed()
    tracemalloc.start()
    try:
        result = evaluate(model, split, "test")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150e6, f"peak {peak / 1e6:.0f} MB"
    assert model.made == len(result.users) > 300
    assert 0 <= result.metrics["HR@10"] <= 1
