"""The pairs both protocols hold out from (`split_protocols._pairs`) are found by a sort of the pair
key alone and a per-pair maximum of time; these tests hold them, and the splits drawn from them, to
the way they were found before (one sort by pair, time and row), bit for bit, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from recviz.data import split_protocols
from recviz.data.interactions import Interactions
from recviz.data.split import make_split


def _old_pairs(data, target):
    """The former `_pairs`: np.lexsort by (pair, time, row), each pair's last row, then by (user, time, row)."""
    keys = data.user.astype(np.int64) * data.n_items + data.item
    time = data.timestamp
    rows = np.arange(len(keys)) if target is None else np.flatnonzero(data.behavior == data.behavior_code(target))
    order = rows[np.lexsort((keys[rows],)) if time is None else np.lexsort((time[rows], keys[rows]))]
    ordered = keys[order]
    rep = np.sort(order[np.r_[ordered[1:] != ordered[:-1], True]])
    by = (data.user[rep],) if time is None else (time[rep], data.user[rep])
    return rep[np.lexsort(by)], keys


def _log(seed: int, with_time: bool, n_rows: int = 400, n_users: int = 12, n_items: int = 9) -> Interactions:
    """A small log with many repeated pairs and many equal times (ties everywhere)."""
    rng = np.random.default_rng(seed)
    user, item = rng.integers(0, n_users, n_rows), rng.integers(0, n_items, n_rows)
    user[:n_users], item[:n_items] = np.arange(n_users), np.arange(n_items)  # every id occurs
    return Interactions.from_codes(user, item, np.array([f"u{i}" for i in range(n_users)]),
                                   np.array([f"i{i}" for i in range(n_items)]),
                                   timestamp=rng.integers(0, 4, n_rows) if with_time else None,
                                   behavior=rng.integers(0, 2, n_rows).astype(np.int8), behaviors=("click", "buy"))


def test_pairs_on_a_hand_made_log_with_ties_and_repeats():
    # rows: 0 (u0,i0,t5) 1 (u0,i1,t5) 2 (u0,i0,t5) 3 (u1,i0,t1) 4 (u0,i1,t3) 5 (u1,i0,t1) 6 (u0,i2,t9)
    user, item = np.array([0, 0, 0, 1, 0, 1, 0]), np.array([0, 1, 0, 0, 1, 0, 2])
    data = Interactions.from_codes(user, item, np.array(["a", "b"]), np.array(["x", "y", "z"]),
                                   timestamp=np.array([5, 5, 5, 1, 3, 1, 9]))
    rep, _ = split_protocols._pairs(data, None)
    # u0: (i0 latest row 2 at t5), (i1 row 1 at t5, later than row 4's t3), (i2 row 6, t9): by time, then row
    np.testing.assert_array_equal(rep, [1, 2, 6, 5])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("with_time", [True, False])
@pytest.mark.parametrize("target", [None, "buy"])
def test_pairs_are_the_former_pairs(seed, with_time, target):
    data = _log(seed, with_time)
    rep, keys = split_protocols._pairs(data, target)
    old_rep, old_keys = _old_pairs(data, target)
    np.testing.assert_array_equal(rep, old_rep)
    np.testing.assert_array_equal(keys, old_keys)


@pytest.mark.parametrize("protocol,valid", [("ratio", "latest"), ("loo", "latest"), ("loo", "random")])
@pytest.mark.parametrize("with_time", [True, False])
@pytest.mark.parametrize("target", [None, "buy"])
def test_splits_are_the_splits_of_the_former_pairs(monkeypatch, protocol, valid, with_time, target):
    data = _log(3, with_time, n_rows=1500, n_users=40, n_items=60)  # ~25 unseen items a user
    new = make_split(data, protocol, seed=7, target=target, valid=valid, n_candidates=3, cache=False)
    with monkeypatch.context() as m:
        m.setattr(split_protocols, "_pairs", _old_pairs)
        old = make_split(data, protocol, seed=7, target=target, valid=valid, n_candidates=3, cache=False)
    for part in ("train_rows", "valid_rows", "test_rows", "valid_candidates", "test_candidates"):
        a, b = getattr(new, part), getattr(old, part)
        assert (a is None) == (b is None), part
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=part)  # same rows, same order


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("at_once", [1 << 22, 3])  # 3: positions added in three pieces
def test_last_row_at_the_latest_time_per_group(wide, at_once, monkeypatch):
    monkeypatch.setattr(split_protocols, "POSITIONS_AT_ONCE", at_once)
    # groups [0, 3), [3, 4), [4, 8): latest times 7 (rows 1 and 2: the last, 2), 1 (row 3), 9 (rows 5 and 7: 7)
    times = np.array([3, 7, 7, 1, 2, 9, 4, 9], np.int64)
    if wide:  # (time, position) would not fit in one int64: the two-maxima way
        times = times * 2 ** 60 - 2 ** 62
    got = split_protocols._last_at_latest(times.copy(), np.array([0, 3, 4]))
    np.testing.assert_array_equal(got, [2, 3, 7])


def test_wide_times_give_the_former_pairs():
    data = _log(1, True)
    data.timestamp = data.timestamp * 2 ** 60 - 2 ** 62
    np.testing.assert_array_equal(split_protocols._pairs(data, None)[0], _old_pairs(data, None)[0])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", [None, "buy"])
def test_ratio_held_out_rows_are_the_former_draw(seed, target):
    """The former draw: every pair permuted, 80 % train, then 10 % valid and 10 % test."""
    data = _log(seed, True, n_rows=600, n_users=30, n_items=20)
    rep, _ = _old_pairs(data, target)
    perm = rep[np.random.default_rng(seed).permutation(len(rep))]
    n_train, n_valid = round(0.8 * len(rep)), round(0.1 * len(rep))
    got = split_protocols.ratio_split(data, seed, 0, target)
    has_train = np.bincount(data.user[got["train_rows"]], minlength=data.n_users) > 0
    for part, rows in (("valid_rows", perm[n_train:n_train + n_valid]), ("test_rows", perm[n_train + n_valid:])):
        np.testing.assert_array_equal(got[part], np.sort(rows[has_train[data.user[rows]]]), err_msg=part)
