"""Every metric on a tiny case computed by hand, the tie rule, and the HR/NDCG invariant."""

import math

import numpy as np
import pytest

from recviz.eval.metrics import full_ranking_metrics, mean, sampled_metrics, top_k

L2 = lambda r: 1 / math.log2(r + 1)  # noqa: E731  gain of a hit at 1-based rank r


def test_sampled_rank_two():
    # held-out 0.5; one candidate higher (0.9) → rank 2
    m = sampled_metrics(np.array([[0.5, 0.9, 0.1, 0.3]]), ks=(1, 2, 5))
    assert m["HR@1"][0] == 0 and m["NDCG@1"][0] == 0
    assert m["HR@2"][0] == 1 and m["NDCG@2"][0] == pytest.approx(L2(2))
    assert m["HR@5"][0] == 1 and m["NDCG@5"][0] == pytest.approx(1 / math.log2(3))
    assert m["rank"][0] == 2


def test_sampled_top_and_miss():
    m = sampled_metrics(np.array([[9.0, 1, 2, 3], [0.0, 1, 2, 3]]), ks=(1, 3))
    assert m["HR@1"].tolist() == [1, 0] and m["NDCG@1"].tolist() == [1, 0]
    assert m["HR@3"].tolist() == [1, 0]  # second user: rank 4 > 3


def test_ties_are_averaged_never_favouring_the_held_out_item():
    # one candidate higher, one tied: rank is 2 or 3 with equal chance
    m = sampled_metrics(np.array([[0.5, 0.9, 0.5, 0.1]]), ks=(1, 2, 3))
    assert m["HR@1"][0] == 0
    assert m["HR@2"][0] == pytest.approx(0.5)
    assert m["NDCG@2"][0] == pytest.approx(L2(2) / 2)
    assert m["HR@3"][0] == 1
    assert m["NDCG@3"][0] == pytest.approx((L2(2) + L2(3)) / 2)


def test_constant_scorer_gets_the_chance_rate():
    m = mean(sampled_metrics(np.zeros((50, 101)), ks=(5, 10, 20)))
    assert m["HR@10"] == pytest.approx(10 / 101, abs=1e-6)
    assert m["HR@5"] == pytest.approx(5 / 101, abs=1e-6)
    assert m["NDCG@10"] == pytest.approx(sum(L2(r) for r in range(1, 11)) / 101, abs=1e-6)


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_hr_ndcg_invariant_for_one_held_out_item(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 6, size=(500, 101)).astype(float)  # many ties on purpose
    m = sampled_metrics(scores, ks=(k,))
    hr, ndcg = m[f"HR@{k}"], m[f"NDCG@{k}"]
    assert np.all(hr / math.log2(k + 1) <= ndcg + 1e-12)
    assert np.all(ndcg <= hr + 1e-12)


def test_nan_scores_are_refused():
    with pytest.raises(ValueError):
        sampled_metrics(np.array([[np.nan, 1.0]]))


def test_full_ranking_by_hand():
    top = np.array([[3, 1, 4, 0, 2]])
    indptr, held = np.array([0, 2]), np.array([1, 2])  # user holds out items 1 and 2
    m = full_ranking_metrics(top, indptr, held, ks=(1, 2, 5))
    assert m["HR@1"][0] == 0 and m["Recall@1"][0] == 0 and m["NDCG@1"][0] == 0
    assert m["HR@2"][0] == 1
    assert m["Recall@2"][0] == pytest.approx(0.5)
    assert m["Precision@2"][0] == pytest.approx(0.5)
    assert m["NDCG@2"][0] == pytest.approx(L2(2) / (L2(1) + L2(2)))
    assert m["Recall@5"][0] == 1 and m["Precision@5"][0] == pytest.approx(0.4)
    assert m["NDCG@5"][0] == pytest.approx((L2(2) + L2(5)) / (L2(1) + L2(2)))


def test_full_ranking_several_users_and_perfect_list():
    top = np.array([[0, 1, 2], [2, 1, 0]])
    indptr, held = np.array([0, 1, 3]), np.array([0, 2, 1])  # user0: {0}; user1: {1, 2}
    m = full_ranking_metrics(top, indptr, held, ks=(1, 2))
    assert m["NDCG@1"].tolist() == [1, 1]
    assert m["NDCG@2"].tolist() == pytest.approx([1, 1])
    assert m["Recall@1"].tolist() == [1, 0.5]


def test_top_k_breaks_ties_by_the_permutation_and_skips_excluded():
    scores = np.array([[1.0, 1.0, 1.0, -np.inf, 2.0]])
    perm = np.array([2, 0, 4, 3, 1])
    assert top_k(scores, 3, perm).tolist() == [[4, 2, 0]]  # 4 best, then ties in perm order


def test_full_ranking_constant_scorer_near_chance():
    rng = np.random.default_rng(0)
    n_users, n_items = 2000, 50
    held = rng.integers(0, n_items, size=n_users)
    tops = np.stack([top_k(np.zeros((1, n_items)), 10, rng.permutation(n_items))[0] for _ in range(n_users)])
    m = mean(full_ranking_metrics(tops, np.arange(n_users + 1), held, ks=(10,)))
    assert m["HR@10"] == pytest.approx(10 / n_items, abs=0.03)
