"""The synthetic generator: shape, seeding, validation, behaviours — and that it is learnable."""

import numpy as np
import pytest

from recviz.data.synthetic import generate, parse_options
from recviz.errors import DataError, RecvizError


@pytest.fixture(scope="module")
def default():
    return generate()


def test_default_shape_ids_and_items(default):
    d = default
    assert len(d) == 30_000 and d.n_users == 600 and 350 <= d.n_items <= 400
    assert np.bincount(d.user).min() >= 5
    assert d.user_ids[0] == "u0001" and d.item_ids[0].startswith("i0")
    assert len(np.unique(d.user * d.n_items + d.item)) == len(d)  # no repeated pairs
    assert d.items is not None and len(d.items) == d.n_items
    title = d.item_title(0)
    assert title.startswith(f"Item {int(d.item_ids[0][1:])} · ") and d.items.genres[0] in title
    assert d.rating is not None and d.behavior is None


def test_ratings_are_1_to_5_skewed_to_3_and_4(default):
    values, counts = np.unique(default.rating, return_counts=True)
    assert values.tolist() == [1, 2, 3, 4, 5]
    share = counts / counts.sum()
    assert share[2] + share[3] > 0.55 and share[0] < 0.1


def test_timestamps_increase_per_user_within_about_200_days(default):
    d = default
    order = np.lexsort((np.arange(len(d)), d.user))
    u, t = d.user[order], d.timestamp[order]
    same_user = u[1:] == u[:-1]
    assert (np.diff(t)[same_user] > 0).all()
    assert (t.max() - t.min()) / 86_400 <= 201


def test_same_seed_same_data_other_seed_different():
    a, b, c = generate(seed=3), generate(seed=3), generate(seed=4)
    for col in ("user", "item", "rating", "timestamp"):
        assert np.array_equal(getattr(a, col), getattr(b, col))
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_implicit_has_no_ratings():
    d = generate(n_users=50, n_items=60, n_interactions=1000, kind="implicit")
    assert d.rating is None and d.timestamp is not None and d.behavior is None


def test_multi_behavior_structure_and_signal():
    d = generate(kind="multi")
    assert d.behaviors == ("click", "cart", "fav", "buy")
    click, cart, fav, buy = (d.behavior == k for k in range(4))
    key = d.user * d.n_items + d.item
    clicked = set(key[click])
    carted, faved, bought = set(key[cart]), set(key[fav]), set(key[buy])
    assert len(clicked) == click.sum() == 30_000
    assert carted <= clicked and faved <= clicked and bought <= (carted | faved)
    # cart/fav carry signal: bought share among carted/faved pairs ≫ among clicked-only pairs (0).
    supported = carted | faved
    assert len(bought & supported) / len(supported) > 0.3
    assert len(bought - supported) == 0
    # click < cart/fav < buy in time for the same pair
    t = {(b, k): ts for b, k, ts in zip(d.behavior, key, d.timestamp)}
    for k in list(bought)[:500]:
        before = [t[(b, k)] for b in (1, 2) if (b, k) in t]
        assert t[(0, k)] < min(before) and max(before) < t[(3, k)]
    assert np.bincount(d.user[buy], minlength=d.n_users).min() >= 2


@pytest.mark.parametrize("kwargs, match", [
    ({"n_interactions": 200_000}, "more than half"),
    ({"n_interactions": 100}, "each user needs"),
    ({"n_users": 0}, "n_users"),
    ({"kind": "ratings"}, "kind"),
    ({"temperature": 0}, "temperature"),
])
def test_bad_sizes_get_friendly_errors(kwargs, match):
    with pytest.raises(RecvizError, match=match):
        generate(**kwargs)


def test_parse_options():
    assert parse_options("users=6040,items=3706,interactions=1e6,seed=1") == {
        "n_users": 6040, "n_items": 3706, "n_interactions": 1_000_000, "seed": 1}
    with pytest.raises(DataError, match="valid keys: users, items"):
        parse_options("colour=red")
    with pytest.raises(DataError, match="whole number"):
        parse_options("users=1.5")


# ---- learnability: item-item CF must beat popularity by a wide margin ------------------------
def hit_rates(d, n_neg=100, k=10, seed=0):
    """Leave the last interaction (by time) out per user; rank it among 100 random items the
    user never touched, by popularity and by summed item-item cosine similarity."""
    order = np.lexsort((d.timestamp, d.user))
    u, i = d.user[order], d.item[order]
    last = np.r_[u[1:] != u[:-1], True]
    R = np.zeros((d.n_users, d.n_items))
    R[u[~last], i[~last]] = 1
    test_u, test_i = u[last], i[last]
    pop = R.sum(0)
    norm = np.sqrt(pop) + 1e-9
    sim = (R.T @ R) / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0)
    seen = R.copy()
    seen[test_u, test_i] = 1
    keys = np.random.default_rng(seed).random(R.shape) - 2 * seen  # never pick touched items
    cands = np.c_[test_i, np.argsort(-keys, axis=1)[test_u, :n_neg]]
    out = {}
    for name, scores in (("pop", np.broadcast_to(pop, R.shape)), ("knn", R @ sim)):
        s = scores[test_u[:, None], cands]
        rank = (s[:, 1:] > s[:, :1]).sum(1) + 0.5 * (s[:, 1:] == s[:, :1]).sum(1)
        out[name] = float((rank < k).mean())
    return out


def test_learnable_knn_beats_popularity(default):
    hr = hit_rates(default)
    print(f"HR@10 pop={hr['pop']:.3f} knn={hr['knn']:.3f}")
    assert hr["pop"] > 0.15  # popularity carries some signal (chance is 10/101 ≈ 0.10)
    assert hr["knn"] >= hr["pop"] + 0.15
