"""A list made on demand (the Recommendations page's rerun) reuses the seeded tie order and the
ranking keys' scratch (`recviz.eval.topk`): the same lists as the full sort, each thread its own
scratch, and a second call for another user allocating nothing the size of the catalogue."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from recviz.data.sampling import SeenItems
from recviz.eval import metrics, topk
from recviz.eval.protocols import FunctionScorer, recommend
from recviz.models.itempop import ItemPop


def _expected(scores: np.ndarray, known: list[int], k: int, seed: int):
    """The full sort's list: known items at −inf, ties in the seed's permutation order."""
    s = scores.astype(np.float32).copy()
    s[known] = -np.inf
    perm = np.random.default_rng(seed).permutation(len(s))
    top = metrics.top_k(s[None], k, perm)[0, :k]
    return top, s[top]


def test_a_hand_made_list_with_ties_and_known_items():
    # 8 items; user 0 knows items 1 and 6; scores tie at 2 (items 0, 3, 5) and at 1 (items 2, 4, 7)
    scores = np.array([2, 9, 1, 2, 1, 2, 9, 1], np.float32)
    table = np.tile(scores, (2, 1))
    scorer = FunctionScorer(lambda u, i: table[u[:, None], i] if i.ndim == 2 else table[u, i], 8)
    known = SeenItems(np.array([0, 0]), np.array([1, 6]), 2, 8)
    perm = list(np.random.default_rng(3).permutation(8))
    tied = lambda items: sorted(items, key=perm.index)
    for _ in range(2):  # the second call reuses the cached tie order and the scratch
        top, vals = recommend(scorer, np.array([0]), known, 8, seed=3, with_scores=True)
        assert top[0].tolist() == [*tied([0, 3, 5]), *tied([2, 4, 7]), *tied([1, 6])]
        assert vals[0].tolist() == [2, 2, 2, 1, 1, 1, -np.inf, -np.inf]  # known items last, at −inf
    top1, _ = recommend(scorer, np.array([1]), known, 5, seed=3, with_scores=True)  # user 1 knows nothing
    assert top1[0].tolist() == [*tied([1, 6]), *tied([0, 3, 5])]


def test_random_rows_match_the_full_sort_whatever_the_seed_and_block():
    rng = np.random.default_rng(0)
    n = 50
    table = rng.integers(-2, 3, (7, n)).astype(np.float32)
    table[rng.random(table.shape) < 0.05] = -0.0
    scorer = FunctionScorer(lambda u, i: table[u[:, None], i], n)
    users, items = rng.integers(0, 7, 60), rng.integers(0, n, 60)
    known = SeenItems(users, items, 7, n)
    for seed in (0, 1, 2, 0):  # a seed seen before comes from the cache
        top, vals = recommend(scorer, np.arange(7), known, 12, seed=seed, with_scores=True)
        for u in range(7):
            want_top, want_vals = _expected(table[u], items[users == u].tolist(), 12, seed)
            np.testing.assert_array_equal(top[u], want_top)
            np.testing.assert_array_equal(vals[u], want_vals)


def test_two_threads_at_once_each_get_their_own_list():
    n = 200_000
    rng = np.random.default_rng(1)
    table = rng.integers(0, 50, (4, n)).astype(np.float32)  # many ties: the tie order matters
    scorer = FunctionScorer(lambda u, i: table[u[:, None], i], n)
    known = SeenItems(np.array([0, 1, 2, 3]), np.array([5, 6, 7, 8]), 4, n)
    want = {u: _expected(table[u], [5 + u], 20, 9)[0] for u in range(4)}
    start, got, errors = threading.Barrier(2), {}, []

    def work(users):
        try:
            start.wait()
            for _ in range(15):
                for u in users:
                    got.setdefault(u, []).append(recommend(scorer, np.array([u]), known, 20, seed=9)[0])
        except Exception as e:  # noqa: BLE001 — reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(us,)) for us in ([0, 1], [2, 3])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for u in range(4):
        assert len(got[u]) == 15
        for top in got[u]:
            np.testing.assert_array_equal(top, want[u])


def test_the_tie_order_is_cached_read_only():
    low = topk.tie_low(4, 10)
    assert topk.tie_low(4, 10) is low
    perm = np.random.default_rng(4).permutation(10)
    rank = np.empty(10, np.int64)
    rank[perm] = np.arange(10)
    np.testing.assert_array_equal(low, 9 - rank)
    with pytest.raises(ValueError):  # read-only: no caller can spoil the shared order
        low[0] = 1


def test_a_second_users_list_allocates_nothing_the_size_of_the_catalogue():
    n = 2_000_000
    model = ItemPop()
    model.popularity = np.random.default_rng(2).integers(0, 30, n).astype(np.float32)
    known = SeenItems(np.array([0, 0, 1]), np.array([3, 4, 5]), 2, n)
    first = recommend(model, np.array([0]), known, 20, seed=5, with_scores=True)  # the first view
    scratch = [b.ctypes.data for b in topk._scratch.buffers]
    tracemalloc.start()
    second = recommend(model, np.array([1]), known, 20, seed=5, with_scores=True)  # a rerun
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # before: the tie permutation, its rank, the low keys and a copied score row, ~32 bytes an item
    assert peak < n * 8 / 16, f"a rerun allocated {peak:,} bytes at {n:,} items"
    assert [b.ctypes.data for b in topk._scratch.buffers] == scratch  # the keys' scratch reused
    for u, (top, vals) in ((0, first), (1, second)):
        want_top, want_vals = _expected(model.popularity, [[3, 4], [5]][u], 20, 5)
        np.testing.assert_array_equal(top[0], want_top)
        np.testing.assert_array_equal(vals[0], want_vals)


@pytest.mark.parametrize("rows,k", [(1, 1), (3, 5), (6, 40), (12, 5)])  # 12 > SAMPLED_ROWS: torch.topk
def test_the_sampled_threshold_gives_the_full_sorts_first_k(monkeypatch, rows, k):
    """Rows sampled for a threshold (a small SAMPLE_CELLS, so even 3,000 items are sampled): ties,
    −0.0, negative scores, excluded cells, rows in ascending order (the sample's worst case)."""
    monkeypatch.setattr(topk, "SAMPLE_CELLS", 64)
    rng = np.random.default_rng(rows * 100 + k)
    n = 3_000
    s = rng.integers(-3, 4, (rows, n)).astype(np.float32)
    s[rng.random(s.shape) < 0.05] = -0.0
    s[-1] = np.arange(n)  # ascending: many keys above a strided sample's threshold
    perm = rng.permutation(n)
    rank = np.argsort(perm)
    row, item = rng.integers(0, rows, 200), rng.integers(0, n, 200)
    top, vals = topk.TopK(rank, k).ranked(s, row, item)
    masked = s.copy()
    masked[row, item] = -np.inf
    want = metrics.top_k(masked, k, perm)[:, :k]
    np.testing.assert_array_equal(top, want)
    np.testing.assert_array_equal(vals, np.take_along_axis(masked, want, axis=1))
