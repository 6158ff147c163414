"""Both protocols on hand-made data, their small-user rules, stored candidates, and leakage."""

import numpy as np
import pytest

from recviz.data.interactions import GivenTest
from recviz.data.split import make_split
from recviz.errors import ProtocolError
from recviz.eval.protocols import FunctionScorer, evaluate
from tests.helpers import frame, random_interactions


def raw_pairs(split, part):
    d = split.data
    u, i = split.held_out(part)
    return sorted(zip(d.user_ids[u], d.item_ids[i]))


def test_loo_holds_out_latest_then_previous_with_file_order_breaking_ties():
    data = frame([
        ("a", "x", 1), ("a", "y", 5), ("a", "z", 3), ("a", "w", 5),  # y and w tie: w is later in file
        ("b", "x", 2), ("b", "y", 1), ("b", "z", 3),
        ("c", "x", 1), ("c", "y", 2),  # only 2 items: stays in train, not evaluated
    ])
    s = make_split(data, "loo", n_candidates=0, cache=False)
    assert raw_pairs(s, "test") == [("a", "w"), ("b", "z")]
    assert raw_pairs(s, "valid") == [("a", "y"), ("b", "x")]
    train = s.train
    assert sorted(zip(train.user_ids[train.user], train.item_ids[train.item])) == [
        ("a", "x"), ("a", "z"), ("b", "y"), ("c", "x"), ("c", "y")]
    assert s.info["users_too_small"] == 1 and s.info["users_evaluated"] == 2


def test_loo_without_timestamps_uses_file_order():
    data = frame([("a", "x"), ("a", "y"), ("a", "z")], columns=("user", "item"))
    s = make_split(data, "loo", n_candidates=0, cache=False)
    assert raw_pairs(s, "test") == [("a", "z")] and raw_pairs(s, "valid") == [("a", "y")]


def test_random_validation_is_a_seeded_earlier_pair_and_test_stays_the_latest():
    # one user, items 0..9 in time order: test is always item 9, validation any of 0..8
    data = frame([("a", f"i{t}", t) for t in range(10)])
    picks = set()
    for seed in range(40):
        s = make_split(data, "loo", seed=seed, n_candidates=0, valid="random", cache=False)
        assert raw_pairs(s, "test") == [("a", "i9")]
        (pair,) = raw_pairs(s, "valid")
        picks.add(pair[1])
        assert len(s.train_rows) == 8 and s.valid_rule == "random"
        again = make_split(data, "loo", seed=seed, n_candidates=0, valid="random", cache=False)
        assert raw_pairs(again, "valid") == [pair]
    assert picks <= {f"i{t}" for t in range(9)} and len(picks) >= 6  # not stuck on one item


def test_random_validation_keeps_the_candidates_and_is_stored_apart():
    data = random_interactions(seed=6)
    latest = make_split(data, "loo", seed=1, n_candidates=30)
    rand = make_split(data, "loo", seed=1, n_candidates=30, valid="random")
    assert np.array_equal(latest.test_rows, rand.test_rows)
    assert np.array_equal(latest.test_candidates, rand.test_candidates)
    assert not np.array_equal(latest.valid_rows, rand.valid_rows)
    assert np.array_equal(make_split(data, "loo", seed=1, n_candidates=30, valid="random").valid_rows,
                          rand.valid_rows)  # reloaded from the store, with its rule
    assert make_split(data, "loo", seed=1, n_candidates=30, valid="random").valid_rule == "random"
    assert "random validation" in rand.describe() and "random" not in latest.describe()
    with pytest.raises(ProtocolError):
        make_split(data, "loo", valid="earliest", cache=False)


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_every_user_with_one_interaction_is_a_readable_error(protocol):
    data = frame([(u, f"i{u}", u) for u in range(30)])
    with pytest.raises(ProtocolError) as err:
        make_split(data, protocol, cache=False)
    assert "Fix:" in str(err.value)


@pytest.mark.parametrize("protocol,valid", [("loo", "latest"), ("loo", "random"), ("ratio", "latest")])
@pytest.mark.parametrize("behaviors", [False, True])
def test_no_training_row_contains_a_held_out_pair(protocol, valid, behaviors):
    data = random_interactions(seed=3, behaviors=behaviors)
    s = make_split(data, protocol, n_candidates=20, valid=valid, cache=False)
    train_keys = set(zip(data.user[s.train_rows], data.item[s.train_rows]))
    for part in ("valid", "test"):
        u, i = s.held_out(part)
        assert len(u) > 0
        assert not train_keys & set(zip(u, i))
    assert not set(zip(*s.held_out("valid"))) & set(zip(*s.held_out("test")))


def test_loo_candidates_exclude_everything_the_user_touched_and_are_distinct():
    data = random_interactions(seed=4, behaviors=True)
    s = make_split(data, "loo", n_candidates=50, cache=False)
    touched = {}
    for u, i in zip(data.user, data.item):
        touched.setdefault(u, set()).add(i)
    for part in ("valid", "test"):
        users, _ = s.held_out(part)
        cands = s.candidates(part)
        assert cands.shape == (len(users), 50)
        for u, row in zip(users, cands):
            assert len(set(row)) == 50
            assert not touched[u] & set(row)


def test_candidates_are_stored_and_reused_and_follow_the_seed():
    data = random_interactions(seed=5)
    first = make_split(data, "loo", seed=1, n_candidates=99)
    again = make_split(data, "loo", seed=1, n_candidates=99)
    other = make_split(data, "loo", seed=2, n_candidates=99)
    assert np.array_equal(first.test_candidates, again.test_candidates)
    assert np.array_equal(first.valid_candidates, again.valid_candidates)
    assert not np.array_equal(first.test_candidates, other.test_candidates)
    assert first.test_candidates.shape[1] == 99


def test_target_behavior_holds_out_latest_target_and_drops_its_other_rows():
    data = frame([
        ("a", "x", 1, "click"), ("a", "x", 9, "buy"), ("a", "y", 10, "click"),
        ("a", "z", 2, "buy"), ("a", "v", 3, "buy"), ("a", "w", 4, "click"),
    ], columns=("user", "item", "timestamp", "behavior"))
    s = make_split(data, "loo", n_candidates=0, target="buy", cache=False)
    assert raw_pairs(s, "test") == [("a", "x")]  # latest *buy*, though a click on y is later
    assert raw_pairs(s, "valid") == [("a", "v")]
    train = s.train
    assert ("a", "x") not in set(zip(train.user_ids[train.user], train.item_ids[train.item]))


def test_ratio_split_is_80_10_10_of_pairs():
    data = random_interactions(n_users=100, seed=6)
    s = make_split(data, "ratio", seed=0, cache=False)
    n = len(data)
    assert len(s.train_rows) == round(0.8 * n)
    assert len(s.valid_rows) + s.info["cold_users_skipped"]["valid"] <= round(0.1 * n) + 1
    assert abs(len(s.test_rows) - 0.1 * n) <= 0.01 * n
    assert len(set(s.train_rows) | set(s.valid_rows) | set(s.test_rows)) == len(s.train_rows) + len(
        s.valid_rows) + len(s.test_rows)


def test_given_test_negatives_are_used_as_given():
    data = random_interactions(n_users=5, n_items=300, seed=7)
    users = np.arange(5)
    last = np.array([data.item[data.user == u][-1] for u in users])
    negatives = np.stack([np.setdiff1d(np.arange(data.n_items), data.item[data.user == u])[:20] for u in users])
    data.given_test = GivenTest(users[::-1].copy(), last[::-1].copy(), negatives[::-1].copy())
    s = make_split(data, "loo", n_candidates=100, cache=False)
    u, i = s.held_out("test")
    assert np.array_equal(i, last[u])
    assert np.array_equal(s.test_candidates, negatives[u])
    assert s.n_candidates == 20 and s.valid_candidates.shape == (5, 20)


def test_constant_scorer_scores_chance_on_both_protocols():
    data = random_interactions(n_users=300, n_items=400, per_user=(5, 20), seed=8)
    const = FunctionScorer(lambda u, i: np.zeros(i.shape, np.float32), data.n_items)
    loo = evaluate(const, make_split(data, "loo", cache=False), "test")
    assert loo.metrics["HR@10"] == pytest.approx(10 / 101, abs=1e-6)
    assert loo.protocol == "leave-one-out, 100 candidates"
    ratio = evaluate(const, make_split(data, "ratio", cache=False), "test")
    assert ratio.metrics["Precision@10"] == pytest.approx(1.2 / 390, rel=0.5)  # ~|held|/|unseen|
    assert ratio.metrics["HR@10"] < 0.15


def test_oracle_scores_perfectly():
    data = random_interactions(seed=9)
    s = make_split(data, "loo", cache=False)
    users, held = s.held_out("test")
    answer = dict(zip(users, held))
    oracle = FunctionScorer(lambda u, i: (i == np.array([answer.get(x, -1) for x in u])[:, None]).astype(float),
                            data.n_items)
    assert evaluate(oracle, s, "test", ks=(1, 10)).metrics["NDCG@1"] == 1.0


def test_the_split_key_names_exactly_what_a_runs_split_is_drawn_from():
    """Runs with one split key are given one split (the ray executor ships it once): a setting the
    split does not read never changes the key, and one it reads always does."""
    from recviz.config import RunConfig
    from recviz.experiments import experiment

    base = RunConfig(dataset="synthetic:users=40,items=300,interactions=900", model="gmf")
    same = [base.replace(model="mlp"), base.replace(emb_dim=4), base.replace(threads=1), base.replace(device="cpu")]
    assert all(c.split_key == base.split_key for c in same)
    drawn = experiment.prepare_split(base)
    again = experiment.prepare_split(same[0])
    assert np.array_equal(drawn.test_rows, again.test_rows) and np.array_equal(drawn.train_rows, again.train_rows)
    assert np.array_equal(drawn.test_candidates, again.test_candidates)
    other = [base.replace(seed=1), base.replace(protocol="ratio"), base.replace(candidates=50),
             base.replace(valid="random"), base.replace(min_user=2), base.replace(min_rating=3.0),
             base.replace(sample_users=30), base.replace(eval_users=10),
             base.replace(dataset="synthetic:users=41,items=300,interactions=900")]
    assert len({c.split_key for c in other} | {base.split_key}) == len(other) + 1
