"""ItemPop and ItemKNN on hand-made data: exact scores, and they learn from train only."""

import math

import numpy as np
import pytest

from recviz.data.split import make_split
from recviz.models import registry
from recviz.models.itemknn import ItemKNN
from recviz.models.itempop import ItemPop
from recviz.training.loop import fit
from tests.helpers import frame, random_interactions

# Users a, b, c; items p, q, r, s. Latest rows are held out by leave-one-out.
ROWS = [
    ("a", "p", 1), ("a", "q", 2), ("a", "r", 3), ("a", "s", 9), ("a", "t", 10),
    ("b", "p", 1), ("b", "q", 2), ("b", "s", 8), ("b", "t", 9),
    ("c", "p", 1), ("c", "r", 2), ("c", "s", 7), ("c", "t", 8),
]


def fitted(model):
    s = make_split(frame(ROWS), "loo", n_candidates=0, cache=False)
    fit(model, s)
    return s, model


def test_itempop_counts_distinct_users_in_train_only():
    s, model = fitted(ItemPop())
    d = s.data
    pop = dict(zip(d.item_ids, model.popularity))
    # s and t are every user's held-out items: a popularity count from all data would say 3
    assert pop == {"p": 3, "q": 2, "r": 2, "s": 0, "t": 0}


def test_itemknn_cosine_by_hand():
    s, model = fitted(ItemKNN(neighbors=10))
    d = s.data
    ix = {name: k for k, name in enumerate(d.item_ids)}
    # train: a{p,q,r} b{p,q} c{p,r}; |U_p|=3 |U_q|=2 |U_r|=2, U_p∩U_q = {a,b}
    assert model.sim[ix["q"], ix["p"]] == pytest.approx(2 / math.sqrt(3 * 2))
    assert model.sim[ix["q"], ix["r"]] == pytest.approx(1 / math.sqrt(2 * 2))
    assert model.sim[ix["s"]].sum() == 0  # held-out items have no train co-occurrence
    ub = int(np.flatnonzero(d.user_ids == "b")[0])
    # b trained on p, q: score(b, r) = sim(r,p) + sim(r,q)
    expected = 2 / math.sqrt(6) + 1 / 2
    assert model.score_all(np.array([ub]))[0, ix["r"]] == pytest.approx(expected)


def test_itemknn_keeps_only_k_neighbours():
    data = random_interactions(n_users=50, n_items=40, seed=1)
    s = make_split(data, "loo", n_candidates=10, cache=False)
    model = ItemKNN(neighbors=3)
    fit(model, s)
    assert ((model.sim > 0).sum(axis=1) <= 3).all()


@pytest.mark.parametrize("name", ["itempop", "itemknn"])
def test_baselines_never_see_held_out_pairs(name):
    data = random_interactions(seed=2)
    s = make_split(data, "loo", n_candidates=10, cache=False)
    model = registry.build(name, {"neighbors": 20} if name == "itemknn" else {})
    fit(model, s)
    u, i = s.held_out("test")
    if name == "itemknn":
        assert model.x[u, i].sum() == 0  # the interaction matrix it learns from
    else:
        train_pop = np.bincount(np.unique(data.user[s.train_rows] * data.n_items + data.item[s.train_rows])
                                % data.n_items, minlength=data.n_items)
        assert np.array_equal(model.popularity, train_pop)


def test_registry_says_what_a_model_needs():
    spec = registry.get("itempop")
    assert spec.unavailable_reason(random_interactions()) is None
    with pytest.raises(Exception, match="unknown model"):
        registry.get("nope")
