"""Exploring a large log: a seeded sample of its users (`sample_users`, with all their rows, k-core on
top) and a seeded sample of the users judged (`eval_users`), each recorded in the run's config, the
split's identity and the protocol badge."""

import numpy as np
import pytest

from recviz.config import RunConfig
from recviz.data.interactions import GivenTest
from recviz.data.prepare import kcore, sample_users, sampled_users
from recviz.data.split import make_split, protocol_label
from recviz.eval.protocols import FunctionScorer, evaluate
from recviz.experiments import experiment, prepared
from tests.helpers import frame, random_interactions

# users a..f with 1..6 rows: user a has item 1; b has 1, 2; c has 1, 2, 3; …
TINY = [(u, i, 10 * i) for n, u in enumerate("abcdef", 1) for i in range(1, n + 1)]


def rows_of(data) -> dict:
    """raw user → sorted raw items (what a user kept)."""
    out = {}
    for u, i in zip(data.user_ids[data.user], data.item_ids[data.item]):
        out.setdefault(str(u), []).append(str(i))
    return {u: sorted(v) for u, v in out.items()}


def test_a_user_sample_keeps_n_users_with_all_their_rows_reproducibly():
    data = frame(TINY)
    full = rows_of(data)
    got = sample_users(data, 3)
    kept = rows_of(got)
    assert len(kept) == 3 and all(kept[u] == full[u] for u in kept)  # all their rows
    assert got.n_users == 3 and got.n_items == len(set(sum(kept.values(), [])))  # ids renumbered
    assert rows_of(sample_users(data, 3)) == kept  # the same seed, the same users
    assert any(rows_of(sample_users(data, 3, seed=s)).keys() != kept.keys() for s in range(1, 6))
    assert set(rows_of(sample_users(data, 2))) < set(kept) < set(rows_of(sample_users(data, 5)))  # nested
    assert rows_of(sample_users(data, 6)) == full and rows_of(sample_users(data, 100)) == full
    assert got.meta["filters"][-1] == {"op": "sample_users", "users": 3, "seed": 0,
                                           "before": {"users": 6, "items": 6, "rows": 21},
                                           "after": {"users": 3, "items": got.n_items, "rows": len(got)}}
    assert sampled_users(got) == 3 and sampled_users(data) == 0


def test_the_sample_draws_users_uniformly():
    data = random_interactions(n_users=400, seed=1)
    picks = np.concatenate([sample_users(data, 40, seed=s).user_ids for s in range(200)]).astype(int)
    counts = np.bincount(picks, minlength=400)
    assert counts.min() >= 5 and counts.max() <= 40  # 20 expected each (±4.5): none ignored, none favoured


def test_a_shipped_test_set_keeps_the_sampled_users_rows():
    data = frame(TINY)
    data.given_test = GivenTest(np.array([3, 4, 5]), np.array([0, 1, 2]), np.array([[5, 4], [3, 5], [4, 3]]))
    got = sample_users(data, 3)
    g = got.given_test
    kept = set(got.user_ids)
    assert len(g.user) == len([u for u in "def" if u in kept])
    assert all(str(u) in "def" for u in got.user_ids[g.user])
    assert g.negatives.max() < got.n_items  # negatives stay in the new id space


def test_k_core_applies_on_top_of_the_sample():
    data = frame(TINY)
    config = RunConfig(dataset="tiny", sample_users=3, min_user=3, min_item=2)
    got = prepared.prepare(data, config)
    want = kcore(sample_users(data, 3), min_user=3, min_item=2)
    assert rows_of(got) == rows_of(want)
    assert [f["op"] for f in got.meta["filters"]] == ["sample_users", "kcore"]
    # the other order would be another data set: the sample's users, then their k-core
    other = sample_users(kcore(data, min_user=3, min_item=2), 3)
    assert rows_of(other) != rows_of(got)


def test_both_samples_are_in_the_runs_config_split_key_and_badge():
    base = RunConfig(dataset="synthetic:users=60,items=300,interactions=1500", model="gmf", candidates=20)
    sampled, judged = base.replace(sample_users=30), base.replace(eval_users=20)
    assert len({base.split_key, sampled.split_key, judged.split_key}) == 3
    assert RunConfig.from_json(sampled.to_json()).sample_users == 30
    assert prepared.prepare_data(sampled).n_users == 30
    assert sampled.protocol_detail == "leave-one-out, 20 candidates · 30-user sample"
    assert judged.replace(protocol="ratio").protocol_detail == "80/10/10 ratio split, full ranking, 20 sampled users"
    for config in (sampled, judged, judged.replace(protocol="ratio", sample_users=40)):
        assert experiment.prepare_split(config).describe() == config.protocol_detail
    assert protocol_label("ratio", eval_users=5000) == "80/10/10 ratio split, full ranking, 5,000 sampled users"


# ---- evaluating a sample of the users ---------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_a_sample_of_users_is_judged_exactly_as_those_users_are_in_the_full_evaluation(protocol):
    data = random_interactions(n_users=80, n_items=150, seed=4)
    full = make_split(data, protocol, seed=5, n_candidates=30, cache=False)
    part = make_split(data, protocol, seed=5, n_candidates=30, eval_users=25, cache=False)
    assert np.array_equal(part.train_rows, full.train_rows)  # training does not change
    scorer = FunctionScorer(lambda u, i: np.sin(u[:, None] * 0.37 + i * 1.3), data.n_items)
    for which in ("valid", "test"):
        all_users, some = evaluate(scorer, full, which), evaluate(scorer, part, which)
        assert set(some.users) <= set(part.eval_sample())
        at = np.searchsorted(all_users.users, some.users)
        for name, values in some.per_user.items():
            np.testing.assert_array_equal(values, all_users.per_user[name][at])
        assert some.protocol.endswith(", 25 sampled users")
    test = evaluate(scorer, part, "test")
    assert len(np.unique(test.users)) == 25
    # reproducible from the seed; another seed, other users
    again = make_split(data, protocol, seed=5, n_candidates=30, eval_users=25, cache=False)
    assert np.array_equal(again.eval_sample(), part.eval_sample())
    other = make_split(data, protocol, seed=6, n_candidates=30, eval_users=25, cache=False)
    assert not np.array_equal(other.eval_sample(), part.eval_sample())


def test_a_hand_made_case_with_known_metrics():
    """Users 0..3 each hold out their latest item; the scorer puts it first for even users and last for
    odd ones. Judging two sampled users gives the mean over exactly those two."""
    rows = [(u, i, t) for u in range(4) for t, i in enumerate((10 * u + 1, 10 * u + 2, 10 * u + 3, 10 * u + 4))]
    data = frame(rows)
    split = make_split(data, "loo", seed=0, n_candidates=5, eval_users=2, cache=False)
    users, held = split.held_out("test")
    best = dict(zip(users, held))

    def score(u, items):
        hit = items == np.array([best[x] for x in u])[:, None]
        return np.where(hit, np.where(u[:, None] % 2 == 0, 10.0, -10.0), 0.0)

    sample = split.eval_sample()
    got = evaluate(FunctionScorer(score, data.n_items), split, "test", ks=(1,))
    assert list(got.users) == list(sample) and len(sample) == 2
    assert got.metrics["HR@1"] == np.mean([u % 2 == 0 for u in sample])


def test_asking_for_more_users_than_there_are_judges_everyone():
    data = random_interactions(n_users=30, seed=2)
    split = make_split(data, "loo", eval_users=1000, cache=False)
    assert split.eval_sample() is None and split.evaluated("test") is None
    assert len(evaluate(FunctionScorer(lambda u, i: i * 1.0, data.n_items), split).users) == 30


# ---- the command line ---------------------------------------------------------------------------------
def test_import_and_train_take_both_samples(tmp_path):
    from tests.test_cli import last_json, recviz

    data = random_interactions(n_users=50, seed=3).to_frame(raw_ids=True)
    data.to_csv(tmp_path / "log.csv", index=False)
    saved = last_json(recviz("import", str(tmp_path / "log.csv"), "--name", "fifty", "--sample-users", "20", "--json"))
    assert saved["users"] == 20
    out = last_json(recviz("train", "--dataset", "synthetic", "--model", "itempop", "--protocol", "ratio",
                           "--sample-users", "120", "--eval-users", "30", "--json"))
    assert out["protocol_detail"] == "80/10/10 ratio split, full ranking, 30 sampled users · 120-user sample"
    assert out["users_evaluated"] == 30
    assert out["config"]["sample_users"] == 120 and out["config"]["eval_users"] == 30
