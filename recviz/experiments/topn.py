"""Which users' top-N lists a run stores in `topn.npz`, and any other user's list made on demand.

Storing a user's list scores that user against every item, so storing every user's costs users ×
items: at 100k users × 388k items an ItemPop run trained in 89 s and then spent ~50 minutes writing
its lists, and at paper scale (20,000 users × 527,329 items) an mbnmf run spent ~65 min scoring
10,000 users' lists after 35 min of training (measured on a busy machine). So a run stores the lists
of at most `user_bound(n_items)` users — `TOPN_CELLS` scored cells (users × items), never more than
`TOPN_USERS` users, at least one — every user when it has no more than that (every ml-100k / ml-1m
run), otherwise the users it evaluated on test first (so the per-user views of eval.npz read stored
lists) and then a seeded draw of the others — and names them in the file (`users`, sorted internal
ids). How many a run stored is read from that file (`len(topn["users"])`), never from the bounds.
Another user's list is made when asked for (`artifacts.user_topn`), by `recommend` on that one user
with the run's model, seed and that user's known items only: exactly the list the unbounded save
would have stored. A file written before the bound has no `users` array: it holds every user's list.
"""

from __future__ import annotations

import numpy as np

# Scored cells (stored users × items) a run's save may spend on its lists. The slowest scorer, an
# MLP (mbnmf at paper scale: 20,000 users × 527,329 items), scored ≈1.35M cells/s on this 2-core CPU,
# so storing 10,000 users' lists took ~65 min after 35 min of training; 2·10⁸ cells is ~2.5 min of
# it (dot-product models and ItemPop score far faster), i.e. 379 users at 527k items. ml-100k
# (943 × 1,682 = 1.6M cells) and ml-1m (6,040 × 3,706 = 22.4M) stay far below: every user stored.
TOPN_CELLS = 200_000_000
# Users whose lists a run stores at most, whatever the catalogue: 10k × top-20 is ~2.4 MB on disk.
TOPN_USERS = 10_000


def user_bound(n_items: int) -> int:
    """How many users' lists a run over `n_items` items stores at most: TOPN_CELLS // n_items
    scored cells' worth, capped at TOPN_USERS, at least 1."""
    return max(1, min(TOPN_USERS, TOPN_CELLS // max(1, int(n_items))))


def stored_users(n_users: int, evaluated: np.ndarray, seed: int, bound: int) -> np.ndarray:
    """The users (sorted internal ids) whose lists a run stores: every user when there are at most
    `bound` (a run's is `user_bound(n_items)`); else the evaluated users first (a seeded draw of
    them when they alone are more than `bound`), then a seeded draw of the rest. O(users), never
    users × items."""
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


def lists(model, split, users: np.ndarray, k: int, seed: int, known=None) -> tuple[np.ndarray, np.ndarray]:
    """(items int64 [len(users), k], scores float32) of `users`: `recommend` over their unseen
    items (train and validation excluded), only their own known items indexed. `known`: those
    items (a `SeenItems` holding at least `users`' train and validation pairs) when the caller has
    them, e.g. from a per-user row index (`analysis.runview`), which spares the mask over every
    train row that `split.known_before` costs."""
    from recviz.eval.protocols import recommend

    users = np.asarray(users, np.int64)
    known = split.known_before("test", users=users) if known is None else known
    items, scores = recommend(model, users, known, k, seed=seed, with_scores=True)
    return items.astype(np.int64), scores.astype(np.float32)


def stored_or_made(topn: dict, user: int, make) -> tuple[np.ndarray, np.ndarray]:
    """User `user`'s (items [N], scores [N]): its row in `topn` (`artifacts.load_topn`) when the run
    stored it, else `make()`'s first row — `lists` for that user alone, however the caller has the
    model, split and known items (the page's row index, or the run's files)."""
    row = int(row_of(topn, [user])[0])
    if row >= 0:
        return topn["items"][row], topn["scores"][row]
    items, scores = make()
    return items[0], scores[0]


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
