"""The splits' sorts take the short way on large logs (one combined sort key, no sort at all to
pick validation pairs) and land exactly where the general way (np.lexsort) does."""

from __future__ import annotations

import numpy as np
import pytest

from recviz.data import split_protocols
from recviz.data.split import make_split
from tests.helpers import random_interactions


def _lexsort_pick(users, eligible, from_end, rule, rng):
    """How validation pairs were picked before: one np.lexsort by (user, key)."""
    pos = np.flatnonzero(eligible)
    if len(pos) == 0:
        return pos
    key = -from_end[pos] if rule == "latest" else rng.random(len(pos))
    order = pos[np.lexsort((key, users[pos]))]
    return order[np.r_[users[order][1:] != users[order][:-1], True]]


def _general(monkeypatch) -> None:
    """np.lexsort everywhere: for the pairs' order and for picking validation pairs."""
    monkeypatch.setattr(split_protocols, "_order_by", lambda major, minor: np.lexsort(
        (minor, major)) if minor is not None else np.argsort(major, kind="stable"))
    monkeypatch.setattr(split_protocols, "_pick_valid", _lexsort_pick)


@pytest.mark.parametrize("protocol,target,valid", [("loo", None, "latest"), ("loo", None, "random"),
                                                   ("loo", "buy", "latest"), ("ratio", None, "latest"),
                                                   ("loo", "buy", "random")])
def test_the_fast_sorts_give_the_general_sorts_split(monkeypatch, protocol, target, valid):
    data = random_interactions(n_users=80, n_items=300, per_user=(3, 40), seed=4, behaviors=True)
    data.timestamp = data.timestamp.copy()
    data.timestamp[::7] = data.timestamp[3]  # many equal times: ties go to the file order
    fast = make_split(data, protocol, seed=2, target=target, valid=valid, cache=False)
    with monkeypatch.context() as m:
        _general(m)
        general = make_split(data, protocol, seed=2, target=target, valid=valid, cache=False)
    for part in ("train_rows", "valid_rows", "test_rows", "valid_candidates", "test_candidates"):
        a, b = getattr(fast, part), getattr(general, part)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(np.sort(a, axis=0) if part == "train_rows" else a,
                                          np.sort(b, axis=0) if part == "train_rows" else b, err_msg=part)


def test_order_by_is_major_then_minor_then_position():
    rng = np.random.default_rng(0)
    major, minor = rng.integers(0, 5, 500), rng.integers(-3, 4, 500)
    np.testing.assert_array_equal(split_protocols._order_by(major, minor), np.lexsort((minor, major)))
    huge = np.array([2**40, 1, 2**40, 0])
    wide = np.array([0, 2**30, -(2**30), 5])  # major × span of minor would not fit in 63 bits
    np.testing.assert_array_equal(split_protocols._order_by(huge, wide), np.lexsort((wide, huge)))


@pytest.mark.parametrize("rule", ["latest", "random"])
def test_picking_validation_pairs_out_of_order_sorts_first(rule):
    rng = np.random.default_rng(1)
    users = rng.integers(0, 20, 300)
    from_end = rng.permutation(300)
    eligible = rng.random(300) < 0.7
    got = split_protocols._pick_valid(users, eligible, from_end, rule, np.random.default_rng(5))
    np.testing.assert_array_equal(got, _lexsort_pick(users, eligible, from_end, rule, np.random.default_rng(5)))
