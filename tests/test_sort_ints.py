"""The linear-time integer sorts and look-ups (the compiled `recviz/native/radix.c` and
`search.c`, through `recviz.data.arrays` and `SeenItems`) give numpy's results exactly: values,
stable positions, lexicographic orders, membership, a user's n-th unseen item; refused input
(negative keys) and no compiler fall back to numpy with the same answer."""

import numpy as np
import pytest

from recviz import native
from recviz.data.arrays import argsort_ints, isin_ints, lexsort_ints, sort_ints
from recviz.data.sampling import SeenItems

KERNEL = "radix_sort_i64"


@pytest.fixture(params=["compiled", "numpy"])
def path(request, monkeypatch):
    if request.param == "compiled" and native.kernel(KERNEL) is None:
        pytest.skip("no C compiler here")
    monkeypatch.setenv(native.DISABLE, "1" if request.param == "compiled" else "0")
    return request.param


def test_by_hand(path):
    keys = np.array([3, 1, 3, 0, 1, 3], np.int64)
    assert sort_ints(keys).tolist() == [0, 1, 1, 3, 3, 3]
    assert argsort_ints(keys).tolist() == [3, 1, 4, 0, 2, 5]  # equal keys in position order
    assert argsort_ints(keys, np.array([5, 2, 0, 4])).tolist() == [4, 5, 2, 0]  # ties keep `order`'s order
    # by (major, minor): major [1, 0, 1, 0], minor [2, 9, 1, 9] → (0,9)@1, (0,9)@3, (1,1)@2, (1,2)@0
    assert lexsort_ints((np.array([2, 9, 1, 9]), np.array([1, 0, 1, 0]))).tolist() == [1, 3, 2, 0]
    assert keys.tolist() == [3, 1, 3, 0, 1, 3]  # untouched without overwrite
    assert sort_ints(keys, overwrite=True) is keys and keys.tolist() == [0, 1, 1, 3, 3, 3]  # in place


@pytest.mark.parametrize("n", [0, 1, 2, 1000, 100_003])
@pytest.mark.parametrize("high", [1, 2, 2**11, 2**40, 2**62 + 12345])
def test_equal_to_numpy_for_every_size_and_key_width(path, n, high):
    rng = np.random.default_rng(n + high % 997)
    keys = rng.integers(0, high, n, dtype=np.int64)
    assert np.array_equal(sort_ints(keys), np.sort(keys))
    assert np.array_equal(argsort_ints(keys), np.argsort(keys, kind="stable"))
    order = rng.permutation(n)[: n // 2]
    assert np.array_equal(argsort_ints(keys, order), order[np.argsort(keys[order], kind="stable")])
    minor = rng.integers(0, 50, n)
    assert np.array_equal(lexsort_ints((minor, keys % 7)), np.lexsort((minor, keys % 7)))
    copy = keys.copy()
    assert np.array_equal(sort_ints(copy, overwrite=True), np.sort(keys))


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.int8, np.uint64])
def test_other_integer_types_keep_their_type(path, dtype):
    keys = np.random.default_rng(0).integers(0, 100, 5000).astype(dtype)
    out = sort_ints(keys)
    assert out.dtype == dtype and np.array_equal(out, np.sort(keys))
    assert np.array_equal(argsort_ints(keys), np.argsort(keys, kind="stable"))


def test_negative_keys_and_floats_fall_back_to_numpy_with_the_same_answer(path):
    keys = np.array([5, -2, 7, -2, 0], np.int64)
    assert sort_ints(keys).tolist() == [-2, -2, 0, 5, 7]
    assert argsort_ints(keys).tolist() == [1, 3, 4, 0, 2]
    copy = keys.copy()
    assert sort_ints(copy, overwrite=True).tolist() == [-2, -2, 0, 5, 7]  # refused before any write
    floats = np.array([0.5, -1.0, 0.5])
    assert argsort_ints(floats).tolist() == [1, 0, 2]
    big = np.array([2**63 + 5, 3], np.uint64)  # past int64: numpy's sort
    assert sort_ints(big).tolist() == [3, 2**63 + 5]


# ---- look-ups: membership and the n-th unseen item (recviz/native/search.c) --------------------------
@pytest.mark.parametrize("n,m", [(0, 5), (5, 0), (1, 1), (10_000, 300), (50_000, 40_000)])
def test_isin_ints_is_np_isin(path, n, m):
    rng = np.random.default_rng(n + m)
    values, of = rng.integers(0, 2 * max(m, 1), n), rng.integers(0, 2 * max(m, 1), m)  # repeats in both
    assert np.array_equal(isin_ints(values, of), np.isin(values, of))
    assert np.array_equal(isin_ints(values.astype(np.int32), of), np.isin(values, of))


def test_isin_ints_by_hand_with_negative_and_huge_keys(path):
    assert isin_ints(np.array([3, 0, 7, 3]), np.array([3, 9, 0])).tolist() == [True, True, False, True]
    assert isin_ints(np.array([-1, 2]), np.array([2, -1])).tolist() == [True, True]  # refused, then numpy
    keys = np.array([2**62 + 1, 5, 2**40], np.int64)
    assert isin_ints(keys, np.array([2**40, 2**62 + 1])).tolist() == [True, False, True]


def test_nth_unseen_equals_the_whole_log_search(path):
    """Users with none, some and nearly all items seen; each user's r-th unseen item, for every r,
    checked against a plain enumeration of the unseen items."""
    rng = np.random.default_rng(0)
    n_users, n_items = 30, 50
    users = np.repeat(np.arange(n_users), rng.integers(0, 48, n_users))
    items = rng.integers(0, n_items, len(users))
    seen = SeenItems(users, items, n_users, n_items)
    for u in range(n_users):
        unseen = np.setdiff1d(np.arange(n_items), items[users == u])
        got = seen.nth_unseen(np.array([[u]]), np.arange(len(unseen))[None, :])
        assert np.array_equal(got[0], unseen), u
    ranks = np.zeros((3, 2), np.int64)
    assert seen.nth_unseen(np.array([0, 1, 2]), ranks[:, 0]).shape == (3,)  # 1-d broadcast as well


def test_contains_equals_a_set_of_pairs(path):
    """Users with no, few and many items, items at both ends of the range, repeated queries."""
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 60
    users = np.repeat(np.arange(n_users), rng.integers(0, 55, n_users))
    items = rng.integers(0, n_items, len(users))
    seen = SeenItems(users, items, n_users, n_items)
    pairs = set(zip(users.tolist(), items.tolist()))
    qu, qi = rng.integers(0, n_users, 20_000), rng.integers(0, n_items, 20_000)
    qi[:50] = 0
    qi[50:100] = n_items - 1
    expected = np.array([(u, i) in pairs for u, i in zip(qu.tolist(), qi.tolist())])
    assert np.array_equal(seen.contains(qu, qi), expected) and expected.any()
    assert np.array_equal(seen.contains(qu.astype(np.int32), qi.astype(np.int32)), expected)
