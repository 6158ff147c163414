"""Which users' top-N lists a run stores in `topn.npz`, and any other user's list made on demand.

Scoring every user against every item to store all lists costs users × items: at 100k users ×
388k items an ItemPop run trained in 89 s and then spent ~50 minutes writing its lists (measured
on a busy machine). So a run stores at most `TOPN_USERS` users' lists — every user when it has
no more than that (every ml-100k / ml-1m run), otherwise the users it evaluated on test first
(so the per-user views of eval.npz read stored lists) and then a seeded draw of the others — and
names them in the file (`users`, sorted internal ids). Another user's list is made when asked for
(`artifacts.user_topn`), by `recommend` on that one user with the run's model, seed and that
user's known items only: exactly the list the unbounded save would have stored. A file written before the bound has no
`users` array: it holds every user's list.
"""

from __future__ import annotations

import numpy as np

# Users whose lists a run stores: 10k × top-20 is ~2.4 MB on disk, and scoring them stays seconds
# at millions of items (SCORE_CELLS blocks), whatever the number of users.
TOPN_USERS = 10_000


def stored_users(n_users: int, evaluated: np.ndarray, seed: int, bound: int | None = None) -> np.ndarray:
    """The users (sorted internal ids) whose lists a run stores: every user when there are at most
    `bound` (default TOPN_USERS); else the evaluated users first (a seeded draw of them when they
    alone are more than `bound`), then a seeded draw of the rest. O(users), never users × items."""
    bound = TOPN_USERS if bound is None else bound
    if n_users <= bound:
        return np.arange(n_users, dtype=np.int64)
    rng = np.random.default_rng([seed, 3])  # a stream of its own: split ([seed, 2]) and training unmoved
    evaluated = np.unique(np.asarray(evaluated, np.int64))
    if len(evaluated) >= bound:
        return np.sort(rng.choice(evaluated, bound, replace=False))
    flag = np.ones(n_users, bool)
    flag[evaluated] = False
    rest = np.flatnonzero(flag)
    return np.sort(np.concatenate([evaluated, rng.choice(rest, bound - len(evaluated), replace=False)]))


def lists(model, split, users: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(items int64 [len(users), k], scores float32) of `users`: `recommend` over their unseen
    items (train and validation excluded), only their own known items indexed."""
    from recviz.eval.protocols import recommend

    users = np.asarray(users, np.int64)
    items, scores = recommend(model, users, split.known_before("test", users=users), k, seed=seed, with_scores=True)
    return items.astype(np.int64), scores.astype(np.float32)


def row_of(topn: dict, users) -> np.ndarray:
    """Each user's row in `topn`'s arrays (`artifacts.load_topn`), -1 where its list is not stored."""
    users, stored = np.asarray(users, np.int64), topn["users"]
    if len(stored) == 0:
        return np.full(users.shape, -1, np.int64)
    at = np.minimum(np.searchsorted(stored, users), len(stored) - 1)
    return np.where(stored[at] == users, at, -1)


def both(a: dict, b: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The users whose lists two runs (`artifacts.load_topn`) both stored, and their items in each,
    rows aligned: what comparing the runs over many users reads, never a list made per user."""
    users = np.intersect1d(a["users"], b["users"])
    return users, a["items"][row_of(a, users)], b["items"][row_of(b, users)]
