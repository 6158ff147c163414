"""DMF: its input is train's rating matrix only, nce targets are rating / max train rating, the
loss is BCE on the clipped cosine, it learns planted data, and it saves and loads."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from recviz.config import RunConfig
from recviz.data.split import make_split
from recviz.data.synthetic import generate
from recviz.errors import ModelError
from recviz.eval.protocols import evaluate
from recviz.models import registry
from recviz.models.dmf import DMF, MU
from recviz.models.rating_matrix import INPUTS, rating_matrix
from recviz.experiments import experiment
from recviz.data.training_samples import train_positives
from recviz.training.loop import fit
from tests.helpers import frame, random_interactions

# u1 rated i1 twice (1, then 2): the latest counts. The 5-star ratings are all held out, so the
# largest *train* rating is 4.
ROWS = [("u1", "i1", 1.0, 0), ("u1", "i1", 2.0, 1), ("u1", "i2", 4.0, 2), ("u1", "i3", 5.0, 3),
        ("u1", "i4", 5.0, 4),
        ("u2", "i1", 3.0, 1), ("u2", "i2", 1.0, 2), ("u2", "i3", 2.0, 3), ("u2", "i5", 5.0, 4),
        ("u3", "i4", 2.0, 1), ("u3", "i5", 3.0, 2), ("u3", "i6", 4.0, 3), ("u3", "i1", 5.0, 4)]
TRAIN = {("u1", "i1"): 2.0, ("u1", "i2"): 4.0, ("u2", "i1"): 3.0, ("u2", "i2"): 1.0, ("u3", "i4"): 2.0,
         ("u3", "i5"): 3.0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rated_split():
    data = frame(ROWS, columns=("user", "item", "rating", "timestamp"))
    return make_split(data, "loo", n_candidates=1, cache=False)


def planted_split():
    data = generate(n_users=80, n_items=200, n_interactions=2500, seed=0)
    return make_split(data, "loo", n_candidates=50, cache=False)


def build(**options):
    return experiment.build_model(RunConfig.build(model="dmf", **options))


def csr_pairs(inputs, side):
    ptr, idx, val = (inputs[f"{side}_{k}"] for k in ("ptr", "idx", "val"))
    owner = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return owner, idx, val


@pytest.mark.parametrize("protocol", ["loo", "ratio"])
def test_input_holds_train_ratings_and_no_held_out_pair(protocol):
    if protocol == "loo":
        split = rated_split()
    else:
        split = make_split(generate(n_users=40, n_items=60, n_interactions=600, seed=1), "ratio", cache=False)
    d = split.data
    model = build(tower_layers="8,4", epochs=1, patience=0)
    fit(model, split)
    inputs = {k: v.cpu().numpy() for k, v in model.module.state_dict().items() if k in INPUTS}
    users, items, ratings = csr_pairs(inputs, "user")
    cols_items, cols_users, cols_ratings = csr_pairs(inputs, "item")
    # rows and columns are the same matrix
    assert sorted(zip(users, items, ratings)) == sorted(zip(cols_users, cols_items, cols_ratings))
    keys = set(zip(users.tolist(), items.tolist()))
    train = split.train
    assert keys == set(zip(train.user.tolist(), train.item.tolist()))
    for part in ("valid", "test"):
        held = set(zip(*(a.tolist() for a in split.held_out(part))))
        assert held and not held & keys, f"{part} pairs leaked into DMF's input"
    if protocol == "loo":
        raw = {(d.user_ids[u], d.item_ids[i]): r for u, i, r in zip(users, items, ratings)}
        assert raw == TRAIN  # latest train rating per pair; the 5s (held out) are absent


def test_nce_target_is_rating_over_max_train_rating_and_zero_for_negatives():
    split = rated_split()
    d = split.data
    for loss, expected in (("nce", {k: r / 4.0 for k, r in TRAIN.items()}), ("ce", dict.fromkeys(TRAIN, 1.0))):
        model = build(loss=loss, neg_ratio=2)
        sample = model.epoch_sampler(split)(np.random.default_rng(0))
        pos = sample["label"] == 1
        assert pos.sum() == len(TRAIN) and (~pos).sum() == 2 * len(TRAIN)
        np.testing.assert_array_equal(sample["target"][~pos], 0.0)
        got = {(d.user_ids[u], d.item_ids[i]): t for u, i, t in
               zip(sample["user"][pos], sample["item"][pos], sample["target"][pos])}
        assert got == {k: np.float32(r / 4.0) for k, r in TRAIN.items()}  # target is always nce's
        model._inputs = rating_matrix(split)
        model.prepare(d.n_users, d.n_items)
        batch = {k: torch.as_tensor(v, device=model.device) for k, v in sample.items()}
        y = model.module(batch["user"], batch["item"]).clamp(min=MU)
        t = torch.tensor([expected[(d.user_ids[u], d.item_ids[i])] if p else 0.0
                          for u, i, p in zip(sample["user"], sample["item"], pos)], device=model.device)
        want = torch.nn.functional.binary_cross_entropy(y, t)  # BCE on the clipped cosine
        torch.testing.assert_close(model.batch_loss(batch), want)


def test_loss_clips_the_cosine_at_mu():
    model = build(tower_layers="4")
    model.prepare(2, 2)
    # u0's vector opposes every item's: cosine −1, clipped to µ
    model.module._side = lambda side, rows: torch.nn.functional.normalize(
        torch.ones(len(rows), 4, device=rows.device) * (-1.0 if side == "user" else 1.0), dim=-1)
    batch = {k: torch.tensor(v, device=model.device) for k, v in
             {"user": [0, 0], "item": [0, 1], "label": [1.0, 0.0], "target": [0.5, 0.0]}.items()}
    expected = -(0.5 * np.log(MU) + 0.5 * np.log(1 - MU) + np.log(1 - MU)) / 2
    assert float(model.batch_loss(batch)) == pytest.approx(expected, rel=1e-6)


def test_learns_a_tiny_planted_dataset():
    split = planted_split()
    untrained = DMF(tower_layers="64,32", lr=0.003)
    untrained._inputs = rating_matrix(split)
    untrained.prepare(split.data.n_users, split.data.n_items)
    before = evaluate(untrained, split, "test").metrics["HR@10"]
    model = build(tower_layers="64,32", lr=0.003, epochs=8, patience=0, neg_ratio=4)
    history = fit(model, split)
    after = evaluate(model, split, "test").metrics["HR@10"]
    assert history[-1].train_loss < history[0].train_loss
    assert after > 0.45 and after > before + 0.2, (before, after)  # chance: 10/51 ≈ 0.2


def test_state_round_trip_scores_identically_without_the_split():
    split = planted_split()
    d = split.data
    model = build(tower_layers="16,8", epochs=1, patience=0)
    fit(model, split)
    state = model.get_state()
    assert set(INPUTS) <= set(state) and all(isinstance(v, np.ndarray) for v in state.values())
    again = build(tower_layers="16,8", seed=7)
    again.set_state(state, d.n_users, d.n_items)  # no split: Y comes from the state
    users = np.arange(d.n_users)
    np.testing.assert_array_equal(again.score_all(users), model.score_all(users))
    items = np.stack([np.arange(0, 10, 2)] * d.n_users)
    np.testing.assert_array_equal(again.score(users, items), model.score(users, items))
    # score, score_all and the module agree
    np.testing.assert_allclose(model.score(users, items), np.take_along_axis(model.score_all(users), items, 1),
                               rtol=1e-5, atol=1e-6)
    u, i = (torch.as_tensor(a, device=model.device) for a in (np.repeat(users, 5), items.ravel()))
    np.testing.assert_allclose(model.module(u, i).detach().cpu().numpy().reshape(items.shape),
                               model.score(users, items), rtol=1e-5, atol=1e-6)
    assert model.item_embeddings().shape == (d.n_items, 8)
    with pytest.raises(ModelError, match="do not fit"):
        build(tower_layers="8,4").set_state(state, d.n_users, d.n_items)
    with pytest.raises(ModelError, match="missing"):
        build(tower_layers="16,8").set_state({k: v for k, v in state.items() if k != "user_val"}, d.n_users, d.n_items)


def test_needs_ratings_and_says_so():
    implicit = random_interactions(n_users=20, n_items=30, per_user=(4, 10), seed=1)
    spec = registry.get("dmf")
    assert spec.needs == ("rating",) and spec.iterative
    assert {"tower_layers", "loss"} <= set(spec.option_names)
    assert "needs a rating column" in spec.unavailable_reason(implicit)
    with pytest.raises(ModelError, match="rating"):
        experiment.run(RunConfig.build(model="dmf", epochs=1, candidates=5), data=implicit)
    with pytest.raises(ModelError, match="needs ratings"):  # also when fitted directly
        fit(DMF(), make_split(implicit, "loo", n_candidates=5, cache=False))
    bad = frame([(r[0], r[1], r[2] - 3.0, r[3]) for r in ROWS], columns=("user", "item", "rating", "timestamp"))
    with pytest.raises(ModelError, match="positive ratings"):
        fit(DMF(), make_split(bad, "loo", n_candidates=1, cache=False))
    with pytest.raises(ModelError, match="loss must be one of nce, ce"):
        DMF(loss="mse")


def test_rated_multi_behavior_data_with_a_target_behavior():
    """Y holds exactly the pairs the loop learns from (with --target: that behaviour's)."""
    data = random_interactions(n_users=30, n_items=40, per_user=(5, 12), seed=2, behaviors=True)
    data = dataclasses.replace(data, rating=np.random.default_rng(0).integers(1, 6, len(data)).astype(np.float32))
    split = make_split(data, "loo", n_candidates=5, target="buy", cache=False)
    inputs = rating_matrix(split)
    users, items, _ = train_positives(split)
    owner, idx, _ = csr_pairs(inputs, "user")
    np.testing.assert_array_equal(owner, users)
    np.testing.assert_array_equal(idx, items)
    held = set(zip(*(a.tolist() for a in split.held_out("test"))))
    assert not held & set(zip(owner.tolist(), idx.tolist()))


def test_samples_travel_as_blocks_of_a_positive_and_its_negatives():
    split = planted_split()
    model = build(neg_ratio=3, batch_size=16, epochs=1, patience=0)
    assert model.shuffle_block == 4
    seen_batches = []
    original = model.batch_loss

    def record(batch):
        seen_batches.append({k: v.clone() for k, v in batch.items()})
        return original(batch)
    model.batch_loss = record
    fit(model, split)
    samples = sum(len(b["user"]) for b in seen_batches)
    assert samples % 4 == 0 and len(seen_batches) == math.ceil(samples / 16)
    for b in seen_batches:
        labels, users = b["label"].view(-1, 4), b["user"].view(-1, 4)
        assert (labels[:, 0] == 1).all() and (labels[:, 1:] == 0).all()  # positive, then its negatives
        assert (users == users[:, :1]).all()  # one user per block
        assert (b["target"].view(-1, 4)[:, 0] > 0).all()
    firsts = torch.cat([b["user"].view(-1, 4)[:, 0] for b in seen_batches])
    assert not torch.equal(firsts, torch.sort(firsts).values)  # the blocks are shuffled


def test_forward_runs_each_distinct_user_and_item_once_with_the_same_result():
    split = planted_split()
    model = build(epochs=1, patience=0)
    fit(model, split)
    net = model.module
    users = torch.tensor([3, 3, 7, 3, 7, 1])
    items = torch.tensor([5, 9, 5, 5, 2, 9])
    expected = (net.users(users) * net.items(items)).sum(-1)  # every pair on its own
    torch.testing.assert_close(net(users, items), expected)
