"""EINMF: explicit targets are rating / max train rating, η = 1 and η = 0 are exactly the implicit-
and explicit-only losses, explicit vectors sum train ratings only, it learns planted data, and it
saves and loads."""

import math

import numpy as np
import pytest
import torch

from recviz.config import RunConfig
from recviz.errors import ModelError
from recviz.eval.protocols import evaluate
from recviz.models import registry
from recviz.experiments import experiment
from recviz.models.einmf import EINMF
from recviz.models.rating_matrix import INPUTS
from recviz.models.losses import log_loss
from recviz.training.loop import fit
from tests.helpers import random_interactions
from tests.test_dmf import TRAIN, csr_pairs, planted_split, rated_split


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(**options):
    return experiment.build_model(RunConfig.build(model="einmf", **options))


def sample_batch(model, split):
    sample = model.epoch_sampler(split)(np.random.default_rng(0))
    return sample, {k: torch.as_tensor(v, device=model.device) for k, v in sample.items()}


def test_explicit_target_is_rating_over_max_train_rating():
    split = rated_split()  # train ratings 1..4 (the 5s are held out), u1-i1 re-rated 1 → 2
    d = split.data
    sample, _ = sample_batch(build(neg_ratio=2), split)
    users, items = d.user_ids[sample["user"]], d.item_ids[sample["item"]]
    n = len(TRAIN)
    np.testing.assert_array_equal(sample["label"], np.r_[np.ones(n), np.zeros(2 * n)].astype(np.float32))
    expected = np.array([TRAIN[(u, i)] / 4.0 for u, i in zip(users[:n], items[:n])] + [0.0] * (2 * n), np.float32)
    np.testing.assert_array_equal(sample["target"], expected)
    assert sorted(zip(users[:n], items[:n])) == sorted(TRAIN)
    np.testing.assert_array_equal(np.sort(sample["target"][:n]), np.float32([0.25, 0.5, 0.5, 0.75, 0.75, 1.0]))


@pytest.mark.parametrize("eta", [1.0, 0.0, 0.6])
def test_eta_weighs_implicit_against_explicit_loss(eta):
    split = rated_split()
    model = build(eta=eta, emb_dim=8, hidden_layers="8,4", dropout=0.0)  # two forward passes must agree
    model.prepare(split.data.n_users, split.data.n_items)
    _, batch = sample_batch(model, split)
    logits = model.module(batch["user"], batch["item"])
    implicit, explicit = log_loss(logits, batch["label"]), log_loss(logits, batch["target"])
    loss = model.batch_loss(batch)
    if eta == 1.0:
        assert torch.equal(loss, implicit)  # exactly L_I
    elif eta == 0.0:
        assert torch.equal(loss, explicit)  # exactly L_E
    else:
        torch.testing.assert_close(loss, eta * implicit + (1 - eta) * explicit, rtol=1e-6, atol=0)
    assert not torch.equal(implicit, explicit)


def test_learns_a_tiny_planted_dataset():
    split = planted_split()
    untrained = build(emb_dim=16, hidden_layers="32,16")
    untrained.prepare(split.data.n_users, split.data.n_items)
    before = evaluate(untrained, split, "test").metrics["HR@10"]
    model = build(emb_dim=16, hidden_layers="32,16", lr=0.01, epochs=8, patience=0, dropout=0.2)
    history = fit(model, split)
    after = evaluate(model, split, "test").metrics["HR@10"]
    assert history[-1].train_loss < history[0].train_loss
    assert after > 0.45 and after > before + 0.2, (before, after)  # chance: 10/51 ≈ 0.2


def test_explicit_vectors_sum_train_ratings_only():
    """p_u^E = Σ_j (r_uj / Max R) · E[j] / √|R_u| over the user's *train* ratings, by hand."""
    split = rated_split()  # train: u1 rated i1 (2, its latest) and i2 (4); u3 rated i4 (2), i5 (3)
    d = split.data
    model = build(emb_dim=4, hidden_layers="4", epochs=1, patience=0)
    fit(model, split)
    m = model.module
    inputs = {k: v.cpu().numpy() for k, v in m.state_dict().items() if k in INPUTS}
    users, items, ratings = csr_pairs(inputs, "user")
    keys = set(zip(users.tolist(), items.tolist()))
    assert keys == set(zip(split.train.user.tolist(), split.train.item.tolist()))
    for part in ("valid", "test"):
        held = set(zip(*(a.tolist() for a in split.held_out(part))))
        assert held and not held & keys, f"{part} pairs leaked into EINMF's explicit input"
    uid, iid = ({x: k for k, x in enumerate(ids)} for ids in (d.user_ids, d.item_ids))
    with torch.no_grad():
        e_items, e_users = m.user_explicit.weight, m.item_explicit.weight
        want_u1 = m.user.weight[uid["u1"]] + (2 / 4 * e_items[iid["i1"]] + 4 / 4 * e_items[iid["i2"]]) / math.sqrt(2)
        raters = [(u, r) for (u, i), r in TRAIN.items() if i == "i1"]  # u1 (2) and u2 (3)
        want_i1 = m.item.weight[iid["i1"]] + sum(r / 4 * e_users[uid[u]] for u, r in raters) / math.sqrt(len(raters))
        got_u = m.users(torch.as_tensor([uid["u1"]], device=model.device))[0]
        got_i = m.items(torch.as_tensor([iid["i1"]], device=model.device))[0]
    torch.testing.assert_close(got_u, want_u1)
    torch.testing.assert_close(got_i, want_i1)


def test_state_round_trip_scores_identically_without_the_split():
    split = planted_split()
    d = split.data
    model = build(emb_dim=8, hidden_layers="8,4", dropout=0.2, epochs=2, patience=0)
    fit(model, split)
    assert any(isinstance(m, torch.nn.Dropout) for m in model.module.modules())
    state = model.get_state()
    assert set(INPUTS) <= set(state)
    again = build(emb_dim=8, hidden_layers="8,4", dropout=0.2, seed=5)
    again.set_state(state, d.n_users, d.n_items)  # no split: R comes from the state
    users = np.arange(d.n_users)
    np.testing.assert_array_equal(again.score_all(users), model.score_all(users))  # eval: no dropout
    items = np.stack([np.arange(0, 10, 2)] * d.n_users)
    # score, score_all and the module's own forward agree
    np.testing.assert_allclose(model.score(users, items), np.take_along_axis(model.score_all(users), items, 1),
                               rtol=1e-5, atol=1e-6)
    model.module.eval()
    u, i = (torch.as_tensor(a, device=model.device) for a in (np.repeat(users, 5), items.ravel()))
    with torch.no_grad():
        forward = model.module(u, i).cpu().numpy().reshape(items.shape)
        q = model.module.items(torch.arange(d.n_items, device=model.device)).cpu().numpy()
    np.testing.assert_allclose(forward, model.score(users, items), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.item_embeddings(), q, rtol=1e-6, atol=1e-7)  # Q_i = q^I + q^E
    assert model.item_embeddings().shape == (d.n_items, 8)
    with pytest.raises(ModelError, match="do not fit"):
        build(emb_dim=8, hidden_layers="16").set_state(state, d.n_users, d.n_items)
    with pytest.raises(ModelError, match="missing"):
        build(emb_dim=8, hidden_layers="8,4").set_state({k: v for k, v in state.items() if k != "item_val"},
                                                 d.n_users, d.n_items)
    with pytest.raises(ModelError, match="hold no rating matrix") as err:  # saved before R was an input
        build(emb_dim=8, hidden_layers="8,4").set_state({k: v for k, v in state.items() if k not in INPUTS},
                                                 d.n_users, d.n_items)
    assert "train the run again" in err.value.fix


def test_options_and_registry():
    spec = registry.get("einmf")
    assert spec.needs == ("rating",) and spec.iterative
    assert {"emb_dim", "hidden_layers", "eta", "dropout"} <= set(spec.option_names)
    assert build().eta == 0.6  # the paper's best, RunConfig's default
    implicit = random_interactions(n_users=5, n_items=9, per_user=(3, 6), seed=0)
    assert "needs a rating column" in spec.unavailable_reason(implicit)
    for bad in (dict(eta=1.5), dict(eta=-0.1), dict(dropout=1.0), dict(emb_dim=0), dict(hidden_layers="8,x")):
        with pytest.raises(ModelError):
            EINMF(**bad)
