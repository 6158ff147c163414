"""The linear-time integer sorts of `recviz.data.arrays` (the compiled radix sort,
`recviz/native/radix.c`) give numpy's results exactly: values, stable positions, lexicographic
orders; refused input (negative keys) and no compiler fall back to numpy with the same answer."""

import numpy as np
import pytest

from recviz import native
from recviz.data.arrays import argsort_ints, lexsort_ints, sort_ints

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
