"""A Taobao-shaped interaction log of any size, seeded, written as Parquet in bounded memory.

Shape (Taobao UserBehavior: 100M rows, 988k users, 4.2M items, 9 days): users ≈ rows/100, items ≈
rows/25, columns user_id, item_id, category_id, behavior_type (pv, cart, fav, buy), timestamp (Unix
seconds over 9 days from 2017-11-25). Behaviour shares are Taobao's: clicks (pv) ≈ 89.6 %, carts ≈ 5.5 %,
favourites ≈ 2.9 %, buys ≈ 2.0 %. Item popularity is Zipf-like (weight ∝ (rank + 100)^-1.05) and user
activity log-normal (every user has at least 3 rows), as in real logs.

Like `recviz.data.synthetic` the log carries planted user and item factors, so models have something to
learn: a click goes to the best of a few popularity-drawn items by affinity ⟨p_u, q_i⟩ plus Gumbel noise
at temperature 1 (sampling-importance-resampling: about ∝ popularity · exp(affinity), without scoring the
whole catalogue), and a cart, favourite or buy goes to one of the user's own clicked items, chosen the same
way at a lower temperature — buys (τ = 0.25) follow the factors more closely than carts and favourites
(τ = 0.5), which follow them more closely than clicks. A cart/fav/buy comes after the click it follows.
Repeated (user, item, behaviour) rows occur, as in Taobao's log (read it with dedup 'last').

Rows are made a block of users at a time (`CHUNK_ROWS` rows, each block from its own seeded stream) and
written as row groups of at most `ROW_GROUP_ROWS`, so memory is the factor tables (O(users + items)) plus
one block, whatever the number of rows; the same rows and seed give the same file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

BEHAVIORS = ("pv", "cart", "fav", "buy")
SHARES = (0.896, 0.055, 0.029, 0.020)
TEMPERATURE = {"pv": 1.0, "cart": 0.5, "fav": 0.5, "buy": 0.25}
START = 1_511_539_200  # 2017-11-25 00:00 (UTC+8), the first day of Taobao's UserBehavior
DAYS = 9
FACTORS = 8
CANDIDATES = 8  # popularity-drawn items per click, of which affinity picks one
OWN_PICKS = 4  # clicked items per cart/fav/buy, of which affinity picks one
MIN_ROWS = 3  # per user
CHUNK_ROWS = 1 << 20  # rows generated at a time
ROW_GROUP_ROWS = 1 << 20
COLUMNS = ("user_id", "item_id", "category_id", "behavior_type", "timestamp")


@dataclass
class World:
    """What every block is drawn from: the planted factors, popularity, activity and raw ids."""

    rows: int
    seed: int
    user_f: np.ndarray  # float32 [users, FACTORS]
    item_f: np.ndarray  # float32 [items, FACTORS]
    pop_cdf: np.ndarray  # float64 [items], cumulative popularity
    counts: np.ndarray  # int64 [users], rows per user, summing to `rows`
    user_raw: np.ndarray  # int64 [users]
    item_raw: np.ndarray  # int64 [items]
    item_cat: np.ndarray  # int64 [items], raw category id

    @property
    def n_users(self) -> int:
        return len(self.counts)

    @property
    def n_items(self) -> int:
        return len(self.item_f)


def shape(rows: int) -> tuple[int, int]:
    """(users, items) for a log of `rows` rows."""
    users = max(10, rows // 100)
    return min(users, rows // MIN_ROWS), max(50, rows // 25)


def world(rows: int, seed: int = 0) -> World:
    if rows < 30:
        raise ValueError("a log needs at least 30 rows")
    n_users, n_items = shape(rows)
    rng = np.random.default_rng([seed, 0])
    user_f = rng.standard_normal((n_users, FACTORS), dtype=np.float32)
    item_f = rng.standard_normal((n_items, FACTORS), dtype=np.float32)
    weight = (np.arange(1, n_items + 1, dtype=np.float64) + 100.0) ** -1.05
    weight = weight[rng.permutation(n_items)]  # popularity rank unrelated to the id
    pop_cdf = np.cumsum(weight)
    pop_cdf /= pop_cdf[-1]
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = MIN_ROWS + rng.multinomial(rows - MIN_ROWS * n_users, activity / activity.sum())
    user_raw = rng.permutation(n_users).astype(np.int64) + 1
    # item ids spread over a range a quarter wider than the catalogue, as Taobao's are (4.2M items, ids to 5.2M)
    item_raw = rng.choice(n_items + n_items // 4, n_items, replace=False).astype(np.int64) + 1
    n_cats = max(5, n_items // 450)
    cat_raw = rng.choice(5 * n_cats, n_cats, replace=False).astype(np.int64) + 1
    item_cat = cat_raw[rng.integers(0, n_cats, n_items)]
    return World(rows, seed, user_f, item_f, pop_cdf, counts.astype(np.int64), user_raw, item_raw, item_cat)


def blocks(w: World, chunk_rows: int = CHUNK_ROWS) -> Iterator[dict[str, np.ndarray]]:
    """The log's rows, a block of whole users at a time (about `chunk_rows` rows), sorted by user then
    time as Taobao's file is. Columns as in `COLUMNS`, behaviour as codes into `BEHAVIORS`."""
    ends = np.cumsum(w.counts)
    start_user, k = 0, 0
    while start_user < w.n_users:
        stop_user = int(np.searchsorted(ends, (ends[start_user - 1] if start_user else 0) + chunk_rows, "right"))
        stop_user = max(stop_user, start_user + 1)
        yield _block(w, start_user, min(stop_user, w.n_users), np.random.default_rng([w.seed, 1, k]))
        start_user, k = stop_user, k + 1


def _gumbel_pick(scores: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Per row, the column of the largest score / τ + Gumbel noise (a softmax draw)."""
    return np.argmax(scores / temperature + rng.gumbel(size=scores.shape).astype(np.float32), axis=1)


def _affinity(user_f: np.ndarray, item_f: np.ndarray) -> np.ndarray:
    """⟨p_u, q_i⟩ / √F for [n] users and [n, k] items: [n, k]."""
    return np.einsum("nf,nkf->nk", user_f, item_f) / np.float32(np.sqrt(FACTORS))


def _block(w: World, u0: int, u1: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    counts = w.counts[u0:u1]
    n = int(counts.sum())
    user = np.repeat(np.arange(u0, u1, dtype=np.int64), counts)
    behavior = rng.choice(len(BEHAVIORS), n, p=SHARES).astype(np.int8)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    behavior[first] = 0  # every user clicks at least once: carts, favourites and buys follow clicks
    is_pv = behavior == 0
    item = np.empty(n, np.int64)
    timestamp = np.empty(n, np.int64)
    # clicks: the best of CANDIDATES popularity-drawn items by affinity (+ Gumbel noise, τ = 1)
    pv_rows = np.flatnonzero(is_pv)
    step = 1 << 17
    for s in range(0, len(pv_rows), step):
        rows = pv_rows[s:s + step]
        cand = np.searchsorted(w.pop_cdf, rng.random((len(rows), CANDIDATES)), side="right")
        np.minimum(cand, w.n_items - 1, out=cand)
        pick = _gumbel_pick(_affinity(w.user_f[user[rows]], w.item_f[cand]), TEMPERATURE["pv"], rng)
        item[rows] = cand[np.arange(len(rows)), pick]
    timestamp[pv_rows] = START + rng.integers(0, DAYS * 86_400, len(pv_rows))
    # carts, favourites, buys: the best of OWN_PICKS of the user's own clicks, at a lower temperature
    pv_user = user[pv_rows]  # grouped by user (rows are)
    pv_start = np.searchsorted(pv_user, np.arange(u0, u1))
    pv_count = np.bincount(pv_user - u0, minlength=u1 - u0)
    for code in range(1, len(BEHAVIORS)):
        rows = np.flatnonzero(behavior == code)
        if not len(rows):
            continue
        local = user[rows] - u0
        own = pv_rows[pv_start[local, None] + (rng.random((len(rows), OWN_PICKS)) * pv_count[local, None]).astype(np.int64)]
        scores = _affinity(w.user_f[user[rows]], w.item_f[item[own]])
        chosen = own[np.arange(len(rows)), _gumbel_pick(scores, TEMPERATURE[BEHAVIORS[code]], rng)]
        item[rows] = item[chosen]
        delay = 1 + rng.exponential(1800.0 * code, len(rows)).astype(np.int64)
        timestamp[rows] = np.minimum(timestamp[chosen] + delay, START + DAYS * 86_400 - 1)
    order = np.lexsort((timestamp, user))
    return {"user_id": w.user_raw[user[order]], "item_id": w.item_raw[item[order]],
            "category_id": w.item_cat[item[order]], "behavior_type": behavior[order],
            "timestamp": timestamp[order]}


def write_parquet(path: str | Path, rows: int, seed: int = 0, chunk_rows: int = CHUNK_ROWS) -> dict:
    """Write the log to `path` (a Parquet file, row groups of at most ROW_GROUP_ROWS); returns its facts.
    Goes through `recviz.files.write_atomic`, so an interrupted run leaves no half file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recviz.files import write_atomic

    w = world(rows, seed)
    schema = pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()), ("category_id", pa.int64()),
                        ("behavior_type", pa.string()), ("timestamp", pa.int64())])
    names = pa.array(BEHAVIORS)
    facts = {"rows": 0, "users": w.n_users, "items": w.n_items, "seed": seed,
             "behaviors": dict.fromkeys(BEHAVIORS, 0)}

    def write(fh) -> None:
        with pq.ParquetWriter(fh, schema) as writer:
            for block in blocks(w, chunk_rows):
                codes = block["behavior_type"]
                for code, count in enumerate(np.bincount(codes, minlength=len(BEHAVIORS))):
                    facts["behaviors"][BEHAVIORS[code]] += int(count)
                columns = {k: pa.array(v) for k, v in block.items() if k != "behavior_type"}
                columns["behavior_type"] = names.take(pa.array(codes))  # plain strings, as pandas writes them
                writer.write_table(pa.table([columns[c] for c in COLUMNS], schema=schema),
                                   row_group_size=ROW_GROUP_ROWS)
                facts["rows"] += len(codes)

    write_atomic(path, write)
    return facts
