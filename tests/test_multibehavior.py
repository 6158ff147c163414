"""Multi-behaviour NeuMF (mbnmf) and the --target rule shared by every model: single-behaviour
models learn from target rows only, supportive negatives are never target positives, supportive
branches learn only on their own pairs, and mbnmf beats NeuMF on data whose supportive
behaviours carry signal."""

import dataclasses

import numpy as np
import pytest
import torch

from recviz.config import RunConfig
from recviz.data.sampling import SeenItems
from recviz.data.split import make_split, target_train
from recviz.data.synthetic import generate
from recviz.errors import ModelError
from recviz.eval.protocols import evaluate
from recviz.models import registry
from recviz.models.itemknn import ItemKNN
from recviz.models.itempop import ItemPop
from recviz.models.multibehavior import (MBNMFNet, MultiBehaviorNeuMF, supportive_negatives,
                                         supportive_only)
from recviz.models.ncf import NeuMF
from recviz.experiments import experiment
from recviz.training.loop import fit
from tests.helpers import assert_train_items_rank_first, random_interactions


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_split():
    """20 users × 40 items, click and buy rows (some pairs both), buy held out."""
    data = random_interactions(n_users=20, n_items=40, per_user=(8, 12), seed=3, behaviors=True)
    return make_split(data, "loo", n_candidates=10, target="buy", cache=False)


def multi_split(seed=0):
    data = generate(n_users=150, n_items=300, n_interactions=4000, kind="multi", seed=seed)
    return make_split(data, "loo", n_candidates=100, target="buy", cache=False)


def pairs(users, items, n_items):
    return set((np.asarray(users, np.int64) * n_items + items).tolist())


def sampler_arrays(model, split, seed=0):
    model.branch_codes = model._branches(split)
    return model.epoch_sampler(split)(np.random.default_rng(seed))


def test_single_behavior_models_learn_from_target_rows_only():
    split = tiny_split()
    train, n = split.train, split.data.n_items
    buy = train.behavior == train.behavior_code("buy")
    assert (~buy).any() and buy.any()
    buy_pairs = pairs(train.user[buy], train.item[buy], n)
    target = target_train(split)
    assert len(target) == buy.sum() and pairs(target.user, target.item, n) == buy_pairs

    gmf = experiment.build_model(RunConfig.build(model="gmf", emb_dim=4))
    s = gmf.epoch_sampler(split)(np.random.default_rng(0))
    pos = s["label"] == 1
    assert pairs(s["user"][pos], s["item"][pos], n) == buy_pairs
    assert not pairs(s["user"][~pos], s["item"][~pos], n) & buy_pairs

    pop = ItemPop()
    fit(pop, split)
    np.testing.assert_array_equal(pop.popularity, np.bincount(np.array(sorted(buy_pairs)) % n, minlength=n))
    knn = ItemKNN()
    fit(knn, split)
    assert pairs(*np.nonzero(knn.x), n) == buy_pairs
    # no target: everything in train, as before
    everything = target_train(dataclasses.replace(split, target=None))
    assert len(everything) == len(train)


def test_supportive_negatives_never_include_a_target_positive():
    split = multi_split()
    d, train = split.data, split.train
    model = MultiBehaviorNeuMF(neg_source="supportive", neg_ratio=4)
    s = sampler_arrays(model, split)
    assert model.branch_names == ("buy", "click", "cart", "fav")
    neg = (s["stream"] == 0) & (s["label"] == 0)
    u, i = s["user"][neg], s["item"][neg]
    buy = d.behavior == d.behavior_code("buy")
    every_target = SeenItems(d.user[buy], d.item[buy], d.n_users, d.n_items)  # train, valid and test
    assert not every_target.contains(u, i).any()
    only = supportive_only(train, d.behavior_code("buy"))
    has = only.count(u) > 0
    assert has.mean() > 0.5 and only.contains(u[has], i[has]).all()
    # target positives are the distinct train buys; supportive streams are their own behaviour's pairs
    tb = train.behavior == train.behavior_code("buy")
    pos0 = (s["stream"] == 0) & (s["label"] == 1)
    assert pairs(s["user"][pos0], s["item"][pos0], d.n_items) == pairs(train.user[tb], train.item[tb], d.n_items)
    for k, code in enumerate(model.branch_codes[1:], start=1):
        rows = (s["stream"] == k) & (s["label"] == 1)
        b = train.behavior == code
        assert pairs(s["user"][rows], s["item"][rows], d.n_items) == pairs(train.user[b], train.item[b], d.n_items)
        assert ((s["has"][rows] >> k) & 1).all()


def test_supportive_negatives_fall_back_to_uniform():
    # user 0 touched items 5 and 6 only supportively; user 1 has none; both bought item 0
    only = SeenItems(np.array([0, 0]), np.array([5, 6]), 2, 10)
    target = SeenItems(np.array([0, 1]), np.array([0, 0]), 2, 10)
    users = np.repeat([0, 1], 500)
    neg = supportive_negatives(users, only, target, np.random.default_rng(0))
    assert set(neg[:500]) == {5, 6}
    assert 0 not in set(neg[500:]) and len(set(neg[500:])) == 9


def test_supportive_branch_is_updated_only_on_its_pairs():
    torch.manual_seed(0)
    net = MBNMFNet(5, 6, 4, (8, 4), (3, 0, 1))  # target, then two supportive branches
    u, i = torch.tensor([0, 1]), torch.tensor([2, 3])
    has = torch.tensor([0b001, 0b011])  # pair 0: target only; pair 1: also branch 1's behaviour
    torch.testing.assert_close(net(u, i, has=has), net(u, i))  # masking changes no value

    def grads(row):
        net.zero_grad()
        net(u, i, has=has)[row].backward()
        return [sum(float(p.grad.abs().sum()) for p in net.towers[k].parameters() if p.grad is not None)
                for k in range(3)]

    g0, g1 = grads(0), grads(1)
    assert g0[0] > 0 and g0[1] == 0 and g0[2] == 0
    assert g1[0] > 0 and g1[1] > 0 and g1[2] == 0


def test_overfits_tiny_multi_behavior_data():
    """Every train buy of every user scores above every item the user never touched."""
    split = tiny_split()
    split = dataclasses.replace(split, valid_rows=split.valid_rows[:0], valid_candidates=split.valid_candidates[:0])
    # lr 0.02: at 0.05 the last epochs still bounce; that passed in an earlier CI and fails here
    # with the same code and torch (two users of 20 left with negative margins)
    model = MultiBehaviorNeuMF(emb_dim=16, mlp_layers="32,16", lr=0.02, batch_size=64, epochs=100, patience=0)
    history = fit(model, split)
    assert history[-1].train_loss < 0.5 * history[0].train_loss
    train = split.train
    bought = np.zeros((split.data.n_users, split.data.n_items), bool)
    tb = train.behavior == train.behavior_code("buy")
    bought[train.user[tb], train.item[tb]] = True
    assert_train_items_rank_first(model, split, positives=bought)


RESULTS: dict[str, float] = {}


@pytest.mark.slow  # trains two models to quality
def test_mbnmf_beats_neumf_on_target_alone():
    """Synthetic multi-behaviour data (cart/fav carry signal about buys), 99 users evaluated,
    held-out = latest buy among 100 untouched candidates. Same options for all three models;
    HR@10 (data seed 0, model seed 0): NeuMF on buys 0.323, mbnmf uniform 0.455, mbnmf supportive
    0.364. Over data seeds 0–2 and model seeds 0–2 mbnmf/uniform stayed within 0.455–0.566 and
    NeuMF within 0.24–0.41. Supportive-only negatives do not help here: leave-one-out candidates are
    items the user never touched, so learning "clicked but not bought < bought" is never tested,
    while those negatives replace the random ones that are."""
    split = multi_split()
    opts = dict(emb_dim=16, mlp_layers="32,16", lr=0.01, epochs=30, patience=0, l2=1e-4, threads=1)
    for name, model in (("neumf", NeuMF(pretrain=False, **opts)), ("uniform", MultiBehaviorNeuMF(neg_source="uniform", **opts)),
                        ("supportive", MultiBehaviorNeuMF(neg_source="supportive", **opts))):
        fit(model, split)
        RESULTS[name] = evaluate(model, split, "test").metrics["HR@10"]
    print("HR@10", RESULTS)
    assert RESULTS["uniform"] > RESULTS["neumf"] + 0.08, RESULTS
    assert 0.0 < RESULTS["supportive"] < 1.0


def test_needs_a_target_and_behaviors():
    split = tiny_split()
    with pytest.raises(ModelError, match="--target buy"):
        fit(MultiBehaviorNeuMF(epochs=1), dataclasses.replace(split, target=None))
    with pytest.raises(ModelError, match="neg_source"):
        MultiBehaviorNeuMF(neg_source="popular")
    plain = random_interactions(n_users=10, n_items=30, seed=1)
    assert "behavior" in registry.get("mbnmf").unavailable_reason(plain)
    assert registry.get("mbnmf").unavailable_reason(split.data) is None
    with pytest.raises(ModelError, match="behavior"):
        registry.check_can_feed("mbnmf", plain)


def test_state_round_trip_gives_identical_scores():
    split = tiny_split()
    d = split.data
    model = MultiBehaviorNeuMF(emb_dim=8, mlp_layers="16,8", epochs=2, patience=0)
    fit(model, split)
    state = model.get_state()
    again = MultiBehaviorNeuMF(emb_dim=8, mlp_layers="16,8", seed=5)
    again.set_state(state, d.n_users, d.n_items)
    users = np.arange(d.n_users)
    np.testing.assert_array_equal(again.score_all(users), model.score_all(users))
    assert again.item_embeddings().shape == (d.n_items, 8 + 8)
    with pytest.raises(ModelError, match="do not fit"):
        MultiBehaviorNeuMF(emb_dim=4, mlp_layers="8,4").set_state(state, d.n_users, d.n_items)


def test_experiment_runs_mbnmf_end_to_end():
    data = generate(n_users=60, n_items=80, n_interactions=900, kind="multi", seed=2)
    spec = registry.get("mbnmf")
    assert spec.iterative and spec.needs == ("behavior",)
    config = RunConfig.build(model="mbnmf", target="buy", emb_dim=8, mlp_layers="16,8", epochs=2, patience=0,
                       candidates=20, neg_source="supportive")
    result = experiment.run(config, data=data)
    assert result.epochs_run == 2 and result.model.neg_source == "supportive"
    assert 0.0 <= result.test.metrics["HR@10"] <= 1.0
    with pytest.raises(ModelError, match="--target buy"):
        experiment.run(dataclasses.replace(config, target=None), data=data)
