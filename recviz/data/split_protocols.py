"""How the two protocols of `recviz.data.split` draw their held-out pairs: leave-one-out
(`leave_one_out`) and the 80/10/10 ratio split (`ratio_split`), with the pair ordering, validation
pick and candidate sampling they share. The rules themselves (who is evaluated, what is a
candidate) are described in `recviz.data.split`'s docstring; `make_split` there is the entry point.

Each protocol returns the keyword arguments of `recviz.data.split.Split` rather than a `Split`:
split.py imports this module, so this one cannot import it back (tests/test_layers.py forbids
cycles, lazy imports included).
"""

from __future__ import annotations

import numpy as np

from recviz.data.arrays import argsort_ints, isin_ints, lexsort_ints, sort_ints
from recviz.data.interactions import Interactions
from recviz.data.sampling import SeenItems, sample_candidates
from recviz.errors import ProtocolError

MIN_LOO_ITEMS = 3
RATIO = (0.8, 0.1, 0.1)


def _pairs(data: Interactions, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    """One representative row per eligible (user, item) pair — its latest eligible row, the last in
    file order among equal times — ordered by (user, time, row). Returns (rows, pair keys of all
    rows of `data`).

    Only each pair's latest time matters here, so the rows are sorted by the pair key alone (the
    stable sort keeps file order within a pair) and the latest is found by a per-pair maximum, not
    by sorting (pair, time) together: the key stays the pair's bits (42 at 100M rows), where the
    combined key took the time's ~20 more and so two more radix passes over every row."""
    keys = data.user.astype(np.int64) * data.n_items + data.item
    time = data.timestamp
    rows = None if target is None else np.flatnonzero(data.behavior == data.behavior_code(target))
    ordered = keys.copy() if rows is None else keys[rows]
    order = argsort_ints(ordered, overwrite=True)  # by pair, then row; `ordered`: the sorted keys
    if rows is not None:
        order = rows[order]
        del rows
    first = np.ones(len(ordered), bool)  # a pair's first row
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    del ordered
    starts = np.flatnonzero(first)
    del first
    if time is None:  # no times: the pair's last row in file order
        rep = order[np.r_[starts[1:], len(order)] - 1]
    else:
        rep = order[_last_at_latest(time[order], starts)]
    del order
    rep = sort_ints(rep, overwrite=True)  # file order, which breaks the ties below
    rep = rep[_order_by(data.user[rep], None if time is None else time[rep])]
    return rep, keys


POSITIONS_AT_ONCE = 1 << 22  # `_last_at_latest` adds positions to times this many at a time (32 MB)


def _last_at_latest(times: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group of `times` (groups begin at `starts`, rows within one in file order) the position
    of its last row at the group's largest time, by grouped maxima, no sort: one maximum of
    (time, position) as one int64 where it fits in 63 bits (9 days of seconds × 100M rows do;
    `times` is overwritten then), else a maximum of time and one of the positions at it."""
    n = len(times)
    if n == 0:
        return starts
    lo = int(times.min())
    if (int(times.max()) - lo + 1) * n < 2 ** 63:
        times -= lo
        times *= n
        for a in range(0, n, POSITIONS_AT_ONCE):  # + position, without an int64 array of all n of them
            times[a:a + POSITIONS_AT_ONCE] += np.arange(a, min(a + POSITIONS_AT_ONCE, n))
        return np.maximum.reduceat(times, starts) % n
    pos = np.arange(n)
    latest = np.maximum.reduceat(times, starts)
    pos[times != np.repeat(latest, np.diff(np.r_[starts, n]))] = -1
    return np.maximum.reduceat(pos, starts)


def _order_by(major: np.ndarray, minor: np.ndarray | None) -> np.ndarray:
    """Positions sorted by (major, minor, position) for non-negative `major`: one stable sort of
    one int64 key (major × span of minor + minor's offset) when that fits in 63 bits — user × item
    pair keys and 9 days of seconds do — else one sort per key; linear time (`arrays.argsort_ints`)."""
    if minor is None or not len(major):
        return argsort_ints(major)
    lo, hi = int(minor.min()), int(minor.max())
    span, top = hi - lo + 1, int(major.max()) + 1
    if top * span >= 2 ** 63:
        return lexsort_ints((minor, major))
    key = major.astype(np.int64)
    key *= span
    key += minor
    key -= lo
    return argsort_ints(key, overwrite=True)  # a key of its own: the sort may reuse it


def _train_without(keys: np.ndarray, held: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~isin_ints(keys, keys[held]))


def _pick_valid(users: np.ndarray, eligible: np.ndarray, from_end: np.ndarray, rule: str,
                rng: np.random.Generator) -> np.ndarray:
    """Positions (into the user-sorted pairs) of each user's validation pair among `eligible`
    ones: the latest (`from_end` smallest) or one drawn uniformly (a random key per pair, the
    largest key per user wins). The pairs come by user, and within a user `from_end` falls, so
    a user's eligible pairs are one run and no sort is needed: the latest is the run's last, the
    drawn one the run's largest key (its last on a tie)."""
    pos = np.flatnonzero(eligible)
    if len(pos) == 0:
        return pos
    key = -from_end[pos] if rule == "latest" else rng.random(len(pos))
    user = users[pos]
    new_user = np.r_[True, user[1:] != user[:-1]]
    runs = (user[1:] >= user[:-1]).all() and (rule != "latest" or (new_user[1:] | (key[1:] > key[:-1])).all())
    if not runs:  # not in the order the protocols make: sort
        order = pos[np.lexsort((key, user))]
        return order[np.r_[users[order][1:] != users[order][:-1], True]]
    starts = np.flatnonzero(new_user)
    if rule == "latest":
        return pos[np.r_[starts[1:], len(pos)] - 1]
    best = np.repeat(np.maximum.reduceat(key, starts), np.diff(np.r_[starts, len(pos)]))
    return pos[np.maximum.reduceat(np.where(key == best, np.arange(len(pos)), -1), starts)]


def leave_one_out(data: Interactions, seed: int, n: int, target: str | None,
                  valid: str = "latest") -> dict:
    """The leave-one-out split (`Split`'s keyword arguments): per user the latest pair is test,
    validation by the `valid` rule, `n` sampled candidates for each held-out pair (or the
    NCF-format data's own test item and negatives)."""
    rep, keys = _pairs(data, target)
    users = data.user[rep]
    counts = np.bincount(users, minlength=data.n_users)
    # position of each pair counted from the user's end: 0 = latest
    from_end = np.repeat(np.cumsum(counts), counts)[: len(rep)] - np.arange(len(rep)) - 1
    given = data.given_test
    # its own stream, so that the candidates below are the same whichever rule picks validation
    valid_rng = np.random.default_rng([seed, 1])
    if given is not None:
        test_rows = _rows_of_pairs(data, keys, given.user, given.item)
        rest = ~isin_ints(keys[rep], keys[test_rows])
        counts_rest = np.bincount(users[rest], minlength=data.n_users)
        rep_rest = rep[rest]
        end_rest = np.repeat(np.cumsum(counts_rest), counts_rest) - np.arange(rest.sum()) - 1
        valid_rows = rep_rest[_pick_valid(data.user[rep_rest], counts_rest[data.user[rep_rest]] >= 2,
                                          end_rest, valid, valid_rng)]
        n = given.negatives.shape[1]
        skipped = 0
    else:
        ok = counts[users] >= MIN_LOO_ITEMS
        test_rows = rep[ok & (from_end == 0)]
        valid_rows = rep[_pick_valid(users, ok & (from_end >= 1), from_end, valid, valid_rng)]
        skipped = int(((counts > 0) & (counts < MIN_LOO_ITEMS)).sum())
    if len(test_rows) == 0:
        raise ProtocolError(
            f"no user has the {MIN_LOO_ITEMS} distinct {target + ' ' if target else ''}items leave-one-out "
            f"needs (the most any user has is {int(counts.max(initial=0))})",
            file=data.source,
            fix="use a dataset with more interactions per user, or the ratio protocol",
        )
    train_rows = _train_without(keys, np.concatenate([test_rows, valid_rows]))
    del keys, rep, users, from_end  # before the index of seen pairs is built
    seen = SeenItems(data.user, data.item, data.n_users, data.n_items)  # all splits, all behaviours
    rng = np.random.default_rng(seed)
    valid_c = sample_candidates(data.user[valid_rows], seen, n, rng, data.user_ids)
    if given is not None:
        test_c = given.negatives[_order_like(given.user, data.user[test_rows])]
    else:
        test_c = sample_candidates(data.user[test_rows], seen, n, rng, data.user_ids)
    info = {"users_evaluated": int(len(test_rows)), "users_too_small": skipped,
            "rule": f"users with fewer than {MIN_LOO_ITEMS} distinct items stay in train, not evaluated",
            "given_test": given is not None, "valid": valid}
    return {"protocol": "loo", "data": data, "train_rows": train_rows, "valid_rows": valid_rows,
            "test_rows": test_rows, "valid_candidates": valid_c, "test_candidates": test_c, "seed": seed,
            "n_candidates": n, "target": target, "info": info, "valid_rule": valid}


def ratio_split(data: Interactions, seed: int, n: int, target: str | None) -> dict:
    """The seeded 80/10/10 split of the pairs (`Split`'s keyword arguments), cold users'
    held-out pairs dropped; no candidates (evaluation ranks every item)."""
    rep, keys = _pairs(data, target)
    rng = np.random.default_rng(seed)
    n_train = int(round(RATIO[0] * len(rep)))
    n_valid = int(round(RATIO[1] * len(rep)))
    # the permutation's last 20 % are held out; its first 80 % (train) are never read, so only the
    # held-out positions are looked up in `rep` (a random gather of 0.2, not 1.0, per pair)
    held = rep[rng.permutation(len(rep))[n_train:]]
    valid_rows, test_rows = held[:n_valid], held[n_valid:]
    del held
    if len(test_rows) == 0 or len(valid_rows) == 0:
        raise ProtocolError(f"only {len(rep)} distinct pairs: too few for an 80/10/10 split",
                            file=data.source, fix="use a larger dataset")
    train_rows = _train_without(keys, np.concatenate([valid_rows, test_rows]))
    has_train = np.bincount(data.user[train_rows], minlength=data.n_users) > 0
    cold = {p: _n_distinct(data.user[r][~has_train[data.user[r]]], data.n_users) for p, r in
            (("valid", valid_rows), ("test", test_rows))}
    valid_rows = valid_rows[has_train[data.user[valid_rows]]]
    test_rows = test_rows[has_train[data.user[test_rows]]]
    if len(test_rows) == 0:
        raise ProtocolError("no test user has any training interaction (every user has one item?)",
                            file=data.source, fix="use a dataset with several interactions per user")
    info = {"users_evaluated_valid": _n_distinct(data.user[valid_rows], data.n_users),
            "users_evaluated_test": _n_distinct(data.user[test_rows], data.n_users),
            "cold_users_skipped": cold,
            "rule": "users with held-out items but no train interactions are not evaluated"}
    return {"protocol": "ratio", "data": data, "train_rows": train_rows, "valid_rows": sort_ints(valid_rows),
            "test_rows": sort_ints(test_rows), "seed": seed, "target": target, "info": info}


def _n_distinct(codes: np.ndarray, n: int) -> int:
    """How many distinct values codes in [0, n) take: a count per value, linear (no sort)."""
    return int(np.count_nonzero(np.bincount(codes, minlength=n)))


def _rows_of_pairs(data: Interactions, keys: np.ndarray, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Last row index of each given (user, item) pair."""
    want = users.astype(np.int64) * data.n_items + items
    order = argsort_ints(keys)  # by key, then row
    ordered = keys[order]
    pos = np.searchsorted(ordered, want, side="right") - 1
    if (pos < 0).any() or (ordered[pos] != want).any():
        raise ProtocolError("a given test pair is not among the interactions", file=data.source)
    return order[pos]


def _order_like(given_users: np.ndarray, users: np.ndarray) -> np.ndarray:
    """Indices into the given arrays that line them up with `users`."""
    idx = argsort_ints(given_users)
    return idx[np.searchsorted(given_users[idx], users)]
