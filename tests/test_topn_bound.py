"""topn.npz stores at most `topn.user_bound(n_items)` users' lists (TOPN_CELLS scored cells, at most
`topn.TOPN_USERS` users) (evaluated users first, seeded, named in
`users`); any other user's list is made on demand, equal to what storing every user would have kept."""

import numpy as np
import pytest

from recviz.config import RunConfig
from recviz.errors import RecvizError
from recviz.experiments import artifacts, topn
from recviz.experiments.experiment import run
from recviz.models import registry

DATA = "synthetic:users=80,items=300,interactions=1500"


@pytest.fixture(scope="module")
def knn():
    """A run judged on 20 of its 80 users (`eval_users`)."""
    return run(RunConfig.build(dataset=DATA, model="itemknn", eval_users=20))


def _counting(model, monkeypatch) -> list[int]:
    """Users the model is asked to score against every item, call by call."""
    calls, score_all = [], model.score_all
    monkeypatch.setattr(model, "score_all", lambda users: (calls.append(len(users)), score_all(users))[1])
    return calls


def test_a_run_with_at_most_the_bound_stores_every_user_as_before(knn, tmp_path):
    artifacts.save(tmp_path, knn)
    stored = artifacts.load_topn(tmp_path)
    assert np.array_equal(stored["users"], np.arange(80))
    from recviz.eval.protocols import recommend

    items, scores = recommend(knn.model, np.arange(80), knn.split.known_before("test"), 20, seed=knn.config.seed,
                              with_scores=True)  # what save stored before the bound
    assert np.array_equal(stored["items"], items) and np.array_equal(stored["scores"], scores)


def test_the_bound_is_a_budget_of_scored_cells_capped_at_topn_users(monkeypatch):
    assert topn.user_bound(1682) >= 943 and topn.user_bound(3706) >= 6040  # ml-100k, ml-1m: every user
    assert topn.user_bound(527_329) * 527_329 <= topn.TOPN_CELLS < (topn.user_bound(527_329) + 1) * 527_329
    monkeypatch.setattr(topn, "TOPN_CELLS", 1000)
    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    assert topn.user_bound(300) == 3  # 3 × 300 = 900 ≤ 1000 < 4 × 300: the cells bind
    assert topn.user_bound(10) == 30  # 100 users' worth of cells: the user cap binds
    assert topn.user_bound(5000) == 1  # not even one user's worth: still one


def test_a_run_stores_no_more_cells_than_the_budget(knn, tmp_path, monkeypatch):
    """80 users: a budget of 12.5 users' cells stores 12 users, the evaluated ones first (all 12 of
    them drawn from the 20), and scores no one else; a budget of every user's cells stores every user."""
    n_items = knn.data.n_items
    monkeypatch.setattr(topn, "TOPN_CELLS", 12 * n_items + n_items // 2)
    calls = _counting(knn.model, monkeypatch)
    artifacts.save(tmp_path / "cells", knn)
    stored = artifacts.load_topn(tmp_path / "cells")
    assert len(stored["users"]) == 12 and sum(calls) == 12
    assert np.isin(stored["users"], knn.test.users).all()
    monkeypatch.setattr(topn, "TOPN_CELLS", 80 * n_items)
    artifacts.save(tmp_path / "all", knn)
    assert np.array_equal(artifacts.load_topn(tmp_path / "all")["users"], np.arange(80))


def test_past_the_bound_the_evaluated_users_come_first_then_a_seeded_draw(knn, tmp_path, monkeypatch):
    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    evaluated = np.unique(knn.test.users)
    artifacts.save(tmp_path / "a", knn)
    artifacts.save(tmp_path / "b", knn)
    a, b = artifacts.load_topn(tmp_path / "a"), artifacts.load_topn(tmp_path / "b")
    assert len(a["users"]) == 30 and a["items"].shape == (30, 20)
    assert np.array_equal(a["users"], np.unique(a["users"]))  # sorted, distinct
    assert np.isin(evaluated, a["users"]).all()
    assert np.array_equal(a["users"], b["users"])  # seeded
    # fewer slots than evaluated users: a draw of the evaluated users only
    few = topn.stored_users(80, evaluated, seed=knn.config.seed, bound=8)
    assert len(few) == 8 and np.isin(few, evaluated).all()
    assert not np.array_equal(topn.stored_users(80, evaluated, seed=1, bound=30),
                              topn.stored_users(80, evaluated, seed=2, bound=30))


def test_save_scores_no_more_users_than_the_bound(knn, tmp_path, monkeypatch):
    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    calls = _counting(knn.model, monkeypatch)
    artifacts.save(tmp_path, knn)
    assert 0 < sum(calls) <= 30


def _unbounded_and_bounded(result, tmp_path, monkeypatch):
    artifacts.save(tmp_path / "all", result)
    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    artifacts.save(tmp_path / "some", result)
    return artifacts.load_topn(tmp_path / "all"), artifacts.load_topn(tmp_path / "some")


@pytest.mark.parametrize("model", ["itemknn", "itempop", "gmf"])
def test_a_user_not_stored_gets_the_list_the_unbounded_save_stored(model, tmp_path, monkeypatch):
    if model not in registry.MODELS:
        pytest.skip("neural models not registered")
    result = run(RunConfig.build(dataset=DATA, model=model, eval_users=20, epochs=2, patience=0, emb_dim=8)
                 if model == "gmf" else RunConfig.build(dataset=DATA, model=model, eval_users=20))
    every, some = _unbounded_and_bounded(result, tmp_path, monkeypatch)
    missing = np.setdiff1d(np.arange(80), some["users"])
    assert len(missing) == 50
    for u in missing[:6]:
        items, scores = artifacts.user_topn(some, int(u), tmp_path / "some")  # model and dataset from the run's files
        assert np.array_equal(items, every["items"][u]) and np.array_equal(scores, every["scores"][u])
    for u in some["users"][:3]:  # a stored user's row, as stored
        items, scores = artifacts.user_topn(some, int(u), tmp_path / "some")
        assert np.array_equal(items, every["items"][u])


def test_on_demand_scores_that_one_user_only(knn, tmp_path, monkeypatch):
    _, some = _unbounded_and_bounded(knn, tmp_path, monkeypatch)
    u = int(np.setdiff1d(np.arange(80), some["users"])[0])
    calls = _counting(knn.model, monkeypatch)
    artifacts.user_topn(some, u, tmp_path / "some", knn.model, knn.split)
    assert calls == [1]


def test_the_cli_recommends_for_a_user_not_stored(knn, tmp_path, monkeypatch):
    every, some = _unbounded_and_bounded(knn, tmp_path, monkeypatch)
    u = int(np.setdiff1d(np.arange(80), some["users"])[0])
    table = artifacts.recommend_for(tmp_path / "some", knn.data.user_ids[u], k=5)
    assert list(table["item"]) == list(knn.data.item_ids[every["items"][u, :5]])
    assert np.allclose(table["score"], every["scores"][u, :5])


def test_a_file_without_users_holds_every_user(knn, tmp_path):
    artifacts.save(tmp_path, knn)
    top = artifacts.load_topn(tmp_path)
    np.savez(tmp_path / "topn.npz", items=top["items"], scores=top["scores"])  # as earlier versions wrote it
    old = artifacts.load_topn(tmp_path)
    assert np.array_equal(old["users"], np.arange(80))
    items, _ = artifacts.user_topn(old, 57, tmp_path)
    assert np.array_equal(items, top["items"][57])


@pytest.mark.parametrize("users, why", [
    (lambda u: u[::-1], "not sorted distinct"),
    (lambda u: np.r_[u[:1], u[:-1]], "not sorted distinct"),
    (lambda u: u + 60, "not sorted distinct ids of the run's 80 users"),
    (lambda u: u - u[0] - 1, "not sorted distinct"),  # the first is -1
    (lambda u: u[:-1], "users, not 80 users"),
    (lambda u: u.astype(np.float64), "users float64"),
])
def test_a_damaged_users_array_is_refused(knn, tmp_path, monkeypatch, users, why):
    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    artifacts.save(tmp_path, knn)
    top = artifacts.load_topn(tmp_path)
    np.savez(tmp_path / "topn.npz", items=top["items"], scores=top["scores"], users=users(top["users"]))
    with pytest.raises(RecvizError, match=f"topn.npz is damaged.*{why}"):
        artifacts.load_topn(tmp_path)


def test_a_list_that_needs_a_dataset_gone_says_so(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    user, item = np.repeat(np.arange(40), 8), np.concatenate([rng.choice(60, 8, replace=False) for _ in range(40)])
    path = tmp_path / "ratings.csv"
    path.write_text("user_id,item_id,rating,timestamp\n" + "".join(
        f"u{u},i{i},{1 + (u + i) % 5},{1000 + n}\n" for n, (u, i) in enumerate(zip(user, item))))
    result = run(RunConfig.build(dataset=str(path), model="itempop", candidates=20, eval_users=5))
    monkeypatch.setattr(topn, "TOPN_USERS", 10)
    artifacts.save(tmp_path / "run", result)
    some = artifacts.load_topn(tmp_path / "run")
    u = int(np.setdiff1d(np.arange(result.data.n_users), some["users"])[0])
    path.unlink()
    with pytest.raises(RecvizError, match="was not stored .* needs the run's dataset .*cannot be loaded"):
        artifacts.user_topn(some, u, tmp_path / "run")


def test_the_views_read_the_stored_draw_of_evaluated_users(knn, tmp_path, monkeypatch):
    from recviz.analysis.peruser import RunResults

    monkeypatch.setattr(topn, "TOPN_USERS", 8)  # fewer than the 20 evaluated users
    artifacts.save(tmp_path, knn)
    stored, pu = artifacts.load_topn(tmp_path), artifacts.load_per_user(tmp_path)
    r = RunResults(1, "#1", "", (), 0, pu, _run_dir=tmp_path)
    has = (r.top() >= 0).any(axis=1)
    assert np.array_equal(pu.users[has], stored["users"])
    assert np.array_equal(r.top()[has], stored["items"])  # no -inf padding: 300 items


def test_why_explains_the_list_made_for_a_user_not_stored(monkeypatch):
    from recviz.analysis import why
    from recviz.experiments import record
    from recviz.experiments.store import RunStore

    monkeypatch.setattr(topn, "TOPN_USERS", 30)
    run_id = record.train_here(RunConfig.build(dataset=DATA, model="itemknn", eval_users=20))[0]
    store = RunStore()
    run_dir = store.run_dir(run_id)
    stored, ids = artifacts.load_topn(run_dir), artifacts.load_ids(run_dir)
    u = int(np.setdiff1d(np.arange(80), stored["users"])[0])
    reasons = why.for_run(store, store.get(run_id), ids["user_ids"][u], n=5)
    expected = artifacts.recommend_for(run_dir, ids["user_ids"][u], k=5)
    assert list(reasons.frame.drop_duplicates("rank")["item"]) == list(expected["item"])
