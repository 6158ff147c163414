"""Planted-factor interaction data that always works offline.

Real datasets need a download (or a login); this generator gives every page and test something to
train on in seconds. It is not noise: each user and item gets hidden latent factors, items get a
long-tailed popularity, and users pick items with probability ∝ exp(affinity / τ) × popularity, so
a model that learns the factors beats popularity by a wide margin — exactly the gap NCF-style
models are meant to show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions
from recviz.data.prepare import reindex
from recviz.errors import DataError

KINDS = ("explicit", "implicit", "multi")
BEHAVIORS = ("click", "cart", "fav", "buy")
GENRES = ("Action", "Comedy", "Drama", "Sci-Fi", "Romance", "Thriller", "Documentary",
          "Animation", "Horror", "Musical", "Western", "Mystery")
MIN_PER_USER = 5  # leave-one-out needs a few training rows per user
EPOCH = 1_577_836_800  # 2020-01-01 UTC: fixed, so the same seed gives the same timestamps
DAY = 86_400
RATING_SHARES = (0.06, 0.11, 0.27, 0.35, 0.21)  # 1..5 stars, roughly MovieLens' skew to 3–4
DEFAULT_NAMES = {"explicit": "synthetic", "implicit": "synthetic-implicit", "multi": "synthetic-multi"}


def generate(
    n_users: int = 600,
    n_items: int = 400,
    n_interactions: int = 30_000,
    n_factors: int = 8,
    kind: str = "explicit",
    seed: int = 0,
    *,
    temperature: float = 0.4,
    popularity_skew: float = 1.5,
    days: int = 200,
    name: str | None = None,
) -> Interactions:
    """Generate a dataset with planted structure.

    `n_interactions` is the number of distinct user–item pairs; for kind="multi" each pair is a
    click and cart/fav/buy rows come on top. Every user gets ≥ 5 pairs (activity is log-normal, so
    a few users are heavy), at most half the catalogue each. `temperature` τ scales how strongly
    the planted factors decide (lower = more predictable); `popularity_skew` is the σ of the
    log-normal item popularity (0 = uniform). Items nobody picked are dropped, as in real data.
    Same arguments → identical arrays."""
    kind = "multi" if kind == "multi-behaviour" else kind
    _validate(n_users, n_items, n_interactions, n_factors, kind, temperature, popularity_skew, days)
    rng = np.random.default_rng(seed)
    user_f = rng.standard_normal((n_users, n_factors))
    item_f = rng.standard_normal((n_items, n_factors))
    log_pop = popularity_skew * rng.standard_normal(n_items)
    counts = _activity(rng, n_users, n_items, n_interactions)
    user, item = _sample_pairs(rng, user_f, item_f, log_pop, counts, temperature)
    affinity = np.einsum("ij,ij->i", user_f[user], item_f[item]) / np.sqrt(n_factors)
    timestamp = _timestamps(rng, counts, days)
    cols = {"rating": None, "behavior": None}
    if kind == "explicit":
        cols["rating"] = _ratings(rng, user, affinity, n_users)
    elif kind == "multi":
        user, item, timestamp, cols["behavior"] = _behaviors(rng, user, item, timestamp, affinity)
    params = {"n_users": n_users, "n_items": n_items, "n_interactions": n_interactions,
              "n_factors": n_factors, "kind": kind, "seed": seed, "temperature": temperature,
              "popularity_skew": popularity_skew, "days": days}
    inter = Interactions(
        user=user, item=item, user_ids=_ids("u", n_users), item_ids=_ids("i", n_items),
        rating=cols["rating"], timestamp=timestamp, behavior=cols["behavior"],
        behaviors=BEHAVIORS if kind == "multi" else (), items=_item_table(item_f),
        name=name or DEFAULT_NAMES[kind], source="synthetic", meta={"synthetic": params})
    return reindex(inter)


# ---- options as text ("users=6040,seed=1", used by catalog refs) --------------------------------
OPTIONS = {"users": ("n_users", int), "items": ("n_items", int),
           "interactions": ("n_interactions", int), "factors": ("n_factors", int),
           "seed": ("seed", int), "days": ("days", int),
           "temperature": ("temperature", float), "skew": ("popularity_skew", float)}


def parse_options(text: str, ref: str = "synthetic") -> dict:
    """"users=6040,interactions=1e6" → {"n_users": 6040, "n_interactions": 1000000} (keyword
    arguments for `generate`); unknown keys and non-numbers get an error listing what works."""
    out: dict = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = (s.strip() for s in part.partition("="))
        if key not in OPTIONS or not eq:
            raise DataError(f"'{part}' in '{ref}' is not a valid option; valid keys: "
                            f"{', '.join(OPTIONS)}", fix="write key=value pairs, e.g. "
                            "synthetic:users=1000,items=500,interactions=40000,seed=1")
        arg, cast = OPTIONS[key]
        out[arg] = _number(value, cast, key, ref)
    return out


def _number(text: str, cast: type, key: str, ref: str) -> int | float:
    try:
        value = float(text)
        if cast is int and not value.is_integer():
            raise ValueError
        return int(value) if cast is int else value
    except ValueError:
        kind = "a whole number" if cast is int else "a number"
        raise DataError(f"{key}='{text}' in '{ref}' is not {kind}",
                        fix=f"e.g. {key}={'1000' if cast is int else '0.5'}") from None


# ---- checks -----------------------------------------------------------------------------------
def _validate(n_users, n_items, n_interactions, n_factors, kind, temperature, skew, days) -> None:
    """Friendly errors for sizes that cannot work, before any memory is spent."""
    for label, value, low in (("n_users", n_users, 2), ("n_items", n_items, 2 * MIN_PER_USER),
                              ("n_factors", n_factors, 1), ("days", days, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise DataError(f"synthetic {label} must be a whole number ≥ {low}, got {value!r}")
    if kind not in KINDS:
        raise DataError(f"synthetic kind must be one of {list(KINDS)}, got {kind!r}")
    if not temperature > 0 or not skew >= 0:
        raise DataError(f"synthetic temperature must be > 0 and popularity_skew ≥ 0 "
                        f"(got {temperature!r}, {skew!r})")
    low, high = MIN_PER_USER * n_users, n_users * (n_items // 2)
    if isinstance(n_interactions, bool) or not isinstance(n_interactions, (int, np.integer)):
        raise DataError(f"synthetic n_interactions must be a whole number, got {n_interactions!r}")
    if n_interactions < low:
        raise DataError(f"synthetic n_interactions={n_interactions} is too few for {n_users} users: "
                        f"each user needs ≥ {MIN_PER_USER}",
                        fix=f"use n_interactions ≥ {low} or fewer users")
    if n_interactions > high:
        raise DataError(f"synthetic n_interactions={n_interactions} is more than half of all "
                        f"{n_users}×{n_items} user–item pairs ({high}); data that dense is not "
                        f"realistic and leaves too few negatives to rank against",
                        fix=f"use n_interactions ≤ {high}, or more users/items")


# ---- who interacts with what ------------------------------------------------------------------
def _activity(rng: np.random.Generator, n_users: int, n_items: int, total: int) -> np.ndarray:
    """Pairs per user: ≥ MIN_PER_USER, ≤ half the items, log-normal (a few heavy users), summing
    exactly to `total`. Overflow above the cap is re-dealt to users with room."""
    cap = n_items // 2
    weight = rng.lognormal(0.0, 0.9, n_users)
    counts = MIN_PER_USER + rng.multinomial(total - MIN_PER_USER * n_users, weight / weight.sum())
    for _ in range(64):
        extra = int(np.clip(counts - cap, 0, None).sum())
        if extra == 0:
            return counts
        counts = np.minimum(counts, cap)
        room = counts < cap
        counts[room] += rng.multinomial(extra, weight[room] / weight[room].sum())
    counts = np.minimum(counts, cap)  # pathological case: fill the remaining room in order
    short = total - counts.sum()
    fill = np.repeat(np.arange(n_users), cap - counts)[:short]
    return counts + np.bincount(fill, minlength=n_users)


def _sample_pairs(rng, user_f, item_f, log_pop, counts, temperature):
    """Per user, `counts[u]` distinct items drawn without replacement with probability ∝
    exp(affinity/τ)·popularity: Gumbel-top-k over the logits, a block of users at a time so
    memory stays ~16 MB whatever the size. Returns rows grouped by user, shuffled within a user
    (so time order below is unrelated to draw order)."""
    n_users, n_items = len(user_f), len(item_f)
    scale = 1.0 / (temperature * np.sqrt(user_f.shape[1]))
    block = max(1, (1 << 21) // n_items)
    items = []
    for start in range(0, n_users, block):
        k = counts[start:start + block]
        logits = (user_f[start:start + block] @ item_f.T) * scale + log_pop
        logits += rng.gumbel(size=logits.shape)
        kmax = int(k.max())
        top = np.argpartition(-logits, kmax - 1, axis=1)[:, :kmax]
        order = np.argsort(-np.take_along_axis(logits, top, axis=1), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        items.append(top[np.arange(kmax) < k[:, None]])
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    item = np.concatenate(items).astype(np.int64)
    shuffle = np.lexsort((rng.random(len(user)), user))
    return user, item[shuffle]


# ---- what the rows carry ----------------------------------------------------------------------
def _timestamps(rng: np.random.Generator, counts: np.ndarray, days: int) -> np.ndarray:
    """Strictly increasing seconds per user (rows are grouped by user): each user is active in a
    random window inside `days` days from EPOCH, with exponential gaps between interactions."""
    n_users, n = len(counts), int(counts.sum())
    horizon = days * DAY
    start = rng.uniform(0.0, 0.6, n_users) * horizon
    length = rng.uniform(0.1, 1.0, n_users) * (horizon - start)
    first = np.r_[0, np.cumsum(counts)[:-1]]
    user = np.repeat(np.arange(n_users), counts)
    gaps = rng.exponential(1.0, n)
    csum = np.cumsum(gaps)
    within = csum - np.repeat(csum[first] - gaps[first], counts)  # cumulative gaps inside a user
    frac = within / np.repeat(within[first + counts - 1], counts)  # (0, 1], last row = 1
    rank = np.arange(n) - np.repeat(first, counts)  # + rank: equal seconds never tie
    return EPOCH + np.floor(start[user] + frac * length[user]).astype(np.int64) + rank


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() + 1e-12)


def _ratings(rng, user, affinity, n_users) -> np.ndarray:
    """1–5 stars, monotone in affinity plus a per-user bias and noise, cut at quantiles so the
    shares match RATING_SHARES (most ratings 3–4, few 1s, as on MovieLens)."""
    score = (_standardise(affinity) + rng.normal(0.0, 0.35, n_users)[user]
             + rng.normal(0.0, 0.6, len(user)))
    cuts = np.quantile(score, np.cumsum(RATING_SHARES)[:-1])
    return (1 + np.searchsorted(cuts, score, side="right")).astype(np.float32)


def _behaviors(rng, user, item, click_t, affinity):
    """Click/cart/fav/buy rows. Every pair is clicked; cart and fav are drawn among clicks with
    probability rising in affinity; buys happen only on carted or favourited pairs (mostly the
    high-affinity ones, more often with both), so cart/fav carry signal about buys. Each user's two
    highest-affinity clicks are always carted and bought, so every user has buys to hold out.
    Times: click < cart/fav < buy for the same pair."""
    z = _standardise(affinity)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    order = np.lexsort((-z, user))
    first = np.searchsorted(user[order], user[order], side="left")
    top = np.zeros(len(user), bool)
    top[order[(np.arange(len(user)) - first) < 2]] = True
    cart = (rng.random(len(z)) < sig(-2.4 + 1.6 * z)) | top
    fav = rng.random(len(z)) < sig(-2.8 + 1.6 * z)
    buy = ((cart | fav) & (rng.random(len(z)) < sig(-1.4 + 1.4 * z + 0.8 * (cart & fav)))) | top
    cart_t = click_t + 1 + rng.exponential(600.0, len(z)).astype(np.int64)
    fav_t = click_t + 1 + rng.exponential(900.0, len(z)).astype(np.int64)
    last = np.maximum(np.where(cart, cart_t, 0), np.where(fav, fav_t, 0))
    buy_t = last + 1 + rng.exponential(3600.0, len(z)).astype(np.int64)
    parts = [(np.ones(len(z), bool), click_t), (cart, cart_t), (fav, fav_t), (buy, buy_t)]
    u = np.concatenate([user[m] for m, _ in parts])
    i = np.concatenate([item[m] for m, _ in parts])
    t = np.concatenate([ts[m] for m, ts in parts])
    b = np.concatenate([np.full(int(m.sum()), code, np.int8) for code, (m, _) in enumerate(parts)])
    rows = np.lexsort((b, t, u))
    return u[rows], i[rows], t[rows], b[rows]


# ---- names ------------------------------------------------------------------------------------
def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(4, len(str(n)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(1, n + 1)])


def _item_table(item_f: np.ndarray) -> pd.DataFrame:
    """Titles and genres from the planted factors: an item's genre is its strongest factor (plus a
    second one when that is nearly as strong), so genre pages line up with what a model learns."""
    names = [GENRES[f] if f < len(GENRES) else f"Genre {f + 1}" for f in range(item_f.shape[1])]
    names = np.array(names, dtype=object)
    ranked = np.argsort(-item_f, axis=1)
    best = ranked[:, 0]
    genres = names[best]
    if item_f.shape[1] > 1:
        second = ranked[:, 1]
        rows = np.arange(len(item_f))
        close = item_f[rows, second] > 0.8 * item_f[rows, best]
        genres = np.where(close, genres + "|" + names[second], genres)
    titles = [f"Item {k + 1} · {g.split('|')[0]}" for k, g in enumerate(genres)]
    return pd.DataFrame({"title": titles, "genres": genres.astype(str)})
