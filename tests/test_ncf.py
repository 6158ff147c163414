"""GMF, MLP, NeuMF, MF and BPR on tiny data: they learn, they save and load, NeuMF pre-trains."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from recviz.config import RunConfig
from recviz.data.sampling import SeenItems
from recviz.data.split import make_split
from recviz.errors import Cancelled, ModelError
from recviz.models import registry
from recviz.models.ncf import NeuMF, NeuMFNet, init_from_pretrained
from recviz.experiments import experiment
from recviz.training.loop import fit
from tests.helpers import assert_train_items_rank_first, random_interactions

FIXTURES = Path(__file__).parent / "fixtures"
NEURAL = ["gmf", "mlp", "neumf", "mf", "bpr"]
# small but roomy enough to fit 10 users' train items exactly; many epochs, no early stopping
OVERFIT = dict(emb_dim=16, mlp_layers="32,16", lr=0.05, batch_size=64, epochs=80, patience=0, seed=0,
               pretrain=False)  # NeuMF from scratch; pre-training has its own tests


def tiny_split():
    """10 users × 30 items, 6 items each: leave-one-out keeps 4 train items per user."""
    data = random_interactions(n_users=10, n_items=30, per_user=(6, 7), seed=4)
    return make_split(data, "loo", n_candidates=20, cache=False)


def build(name, **options):
    spec = registry.get(name)  # options the model does not take are left out (GMF has no layers)
    return experiment.build_model(RunConfig.build(model=name, **{k: v for k, v in options.items()
                                                                 if spec.has(k) or k == "seed"}))


@pytest.mark.parametrize("name", NEURAL)
def test_overfits_tiny_data_and_loss_decreases(name):
    """Every train item of every user scores above every item that user never touched (in any
    split) — train HR@1 = 1 against all untouched items, not just against sampled candidates."""
    split = tiny_split()
    # Without validation users the loop keeps the last epoch's weights; with them it would put
    # back the best-validation epoch, which on 10 users is an early, barely trained one.
    split = dataclasses.replace(split, valid_rows=split.valid_rows[:0],
                                valid_candidates=split.valid_candidates[:0])
    model = build(name, **OVERFIT)
    history = fit(model, split)
    assert model.best_epoch == len(history) == OVERFIT["epochs"] and history[0].valid == {}
    assert history[-1].train_loss < 0.5 * history[0].train_loss

    assert_train_items_rank_first(model, split)


@pytest.mark.parametrize("name", NEURAL)
def test_state_round_trip_gives_identical_scores(name):
    split = tiny_split()
    d = split.data
    model = build(name, emb_dim=8, mlp_layers="16,8", epochs=2, patience=0)
    fit(model, split)
    state = model.get_state()
    assert all(isinstance(v, np.ndarray) for v in state.values())

    again = build(name, emb_dim=8, mlp_layers="16,8", seed=99)  # another seed: weights come from state
    again.set_state(state, d.n_users, d.n_items)
    users = np.arange(d.n_users)
    np.testing.assert_array_equal(again.score_all(users), model.score_all(users))
    items = np.stack([np.arange(5)] * d.n_users)
    np.testing.assert_array_equal(again.score(users, items), model.score(users, items))

    with pytest.raises(ModelError, match="do not fit"):
        build(name, emb_dim=4, mlp_layers="8,4").set_state(state, d.n_users, d.n_items)


def test_pretrained_neumf_reports_phases_and_starts_from_its_parts(monkeypatch):
    split = tiny_split()
    start = {}
    real_plan = NeuMF.plan

    def spy(self, phase, split):
        plan = real_plan(self, phase, split)
        if phase.name == "neumf":  # NeuMF's weights and optimiser as the NeuMF phase begins
            start["state"] = {k: v.clone() for k, v in plan.module.state_dict().items()}
            start["optimizer"] = plan.optimizer
        return plan

    monkeypatch.setattr(NeuMF, "plan", spy)
    model = NeuMF(emb_dim=8, mlp_layers="16,8", pretrain=True, lr=0.01, epochs=3, patience=0)
    seen = []
    history = fit(model, split, on_epoch=seen.append)

    assert seen == history
    assert [r.phase for r in history] == ["gmf"] * 3 + ["mlp"] * 3 + ["neumf"] * 3
    assert [r.epoch for r in history] == list(range(1, 10))
    assert 7 <= model.best_epoch <= 9 and start["optimizer"] == "sgd"

    gmf, mlp = model.parts["gmf"].module, model.parts["mlp"].module
    s = start["state"]
    h = torch.cat([0.5 * gmf.out.weight, 0.5 * mlp.out.weight], dim=1)
    assert torch.equal(s["out.weight"], h)
    assert torch.equal(s["out.bias"], 0.5 * gmf.out.bias + 0.5 * mlp.out.bias)
    # one table per side: GMF's columns, then MLP's
    assert torch.equal(s["user.weight"], torch.cat([gmf.bodies["gmf"].user.weight, mlp.bodies["mlp"].user.weight], 1))
    assert torch.equal(s["item.weight"], torch.cat([gmf.bodies["gmf"].item.weight, mlp.bodies["mlp"].item.weight], 1))
    assert torch.equal(s["tower.0.weight"], mlp.bodies["mlp"].tower[0].weight)


def test_cancelled_pretraining_reports_every_finished_epoch():
    done = []
    model = NeuMF(emb_dim=8, mlp_layers="16,8", pretrain=True, epochs=3, patience=0)
    with pytest.raises(Cancelled) as info:
        fit(model, tiny_split(), on_epoch=done.append, should_stop=lambda: len(done) >= 4)
    assert info.value.history == done
    assert [r.phase for r in done] == ["gmf"] * 3 + ["mlp"]


def test_neumf_from_pretrained_averages_the_two_logits():
    torch.manual_seed(0)
    gmf, mlp, neumf = (build(n, emb_dim=8, mlp_layers="16,8") for n in ("gmf", "mlp", "neumf"))
    for m in (gmf, mlp, neumf):
        m.prepare(7, 11)
    init_from_pretrained(neumf.module, gmf.module, mlp.module)
    u, i = torch.arange(7).repeat(11), torch.arange(11).repeat_interleave(7)
    expected = 0.5 * gmf.module(u, i) + 0.5 * mlp.module(u, i)
    torch.testing.assert_close(neumf.module(u, i), expected)


def test_neumf_without_pretraining_is_one_phase():
    history = fit(NeuMF(emb_dim=8, mlp_layers="16,8", pretrain=False, epochs=2, patience=0), tiny_split())
    assert [r.phase for r in history] == ["neumf", "neumf"]


def test_experiment_runs_a_neural_model_end_to_end():
    data = random_interactions(n_users=30, n_items=50, seed=6)
    config = RunConfig.build(model="mlp", mlp_layers="16,8", epochs=3, patience=0, candidates=20)
    result = experiment.run(config, data=data)
    assert result.epochs_run == 3 and result.best_epoch == result.model.best_epoch
    assert result.valid.metrics == result.history[result.best_epoch - 1].valid
    assert 0.0 <= result.test.metrics["HR@10"] <= 1.0


def test_registry_lists_the_options_each_constructor_takes():
    for name in NEURAL:
        spec = registry.get(name)
        assert spec.iterative and spec.uses_device
        build(name)  # every declared option is accepted
    assert not registry.get("bpr").has("neg_ratio")  # one negative per positive
    assert {"emb_dim", "mlp_layers", "pretrain"} <= set(registry.get("neumf").option_names)


@pytest.mark.parametrize("name", ["mlp", "neumf"])
def test_dropout_acts_in_training_only(name):
    split = tiny_split()
    model = build(name, emb_dim=8, mlp_layers="16,8", dropout=0.5, epochs=1, patience=0)
    fit(model, split)
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in model.module.modules()) == 1
    users = np.arange(split.data.n_users)
    np.testing.assert_array_equal(model.score_all(users), model.score_all(users))  # eval: no dropout
    model.module.train()
    u, i = torch.zeros(64, dtype=torch.long), torch.arange(64) % split.data.n_items
    assert not torch.equal(model.module(u, i), model.module(u, i))  # train: dropout on
    with pytest.raises(ModelError, match="dropout"):
        build(name, dropout=1.0)


def test_pretrained_neumf_parts_share_its_dropout():
    model = build("neumf", emb_dim=8, mlp_layers="16,8", dropout=0.3, pretrain=True, epochs=1, patience=0)
    fit(model, tiny_split())
    assert [m.p for m in model.parts["mlp"].module.modules() if isinstance(m, torch.nn.Dropout)] == [0.3]


def test_layers_are_validated():
    assert RunConfig.build(model="mlp", mlp_layers="64, 32,16").options["mlp_layers"] == "64,32,16"
    for bad in ("63,32", "a,b", "", "64,0", "2000000000,8"):
        with pytest.raises(ModelError, match="mlp_layers"):
            RunConfig.build(model="mlp", mlp_layers=bad)


def test_scores_are_logits_of_the_held_out_candidates():
    split = tiny_split()
    model = build("gmf", emb_dim=8, epochs=1, patience=0)
    fit(model, split)
    users, held = split.held_out("test")
    items = np.concatenate([held[:, None], split.candidates("test")], axis=1)
    scores = model.score(users, items)
    assert scores.shape == items.shape and scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.take_along_axis(model.score_all(users), items, axis=1),
                               rtol=1e-5, atol=1e-6)
    assert model.score(users[:0], items[:0]).shape == (0, items.shape[1])
    # candidates never include anything the user touched
    seen = SeenItems(split.data.user, split.data.item, split.data.n_users, split.data.n_items)
    assert not seen.contains(np.repeat(users, items.shape[1] - 1), split.candidates("test").ravel()).any()


# ---- NeuMF: one embedding table per side --------------------------------------------------------------
# tests/fixtures/neumf-state-64f9647.npz was written at 64f9647, when NeuMF kept GMF's and MLP's
# embeddings in separate tables (`bodies.gmf.user.weight` …): NeuMF(**OLD_LAYOUT) on tiny_split(),
# its weights as first built ("init/…"), after `fit` ("state/…"), its scores of every item for every
# user and its item embeddings.
OLD_LAYOUT = dict(emb_dim=8, mlp_layers="16,8,4", pretrain=True, lr=0.01, epochs=2, patience=0, seed=3)


def old_layout_fixture():
    z = np.load(FIXTURES / "neumf-state-64f9647.npz")
    part = {p: {k[len(p) + 1:]: z[k] for k in z.files if k.startswith(p + "/")} for p in ("init", "state")}
    return part["init"], part["state"], z


def test_neumf_state_saved_with_separate_tables_loads_and_scores_identically():
    _, state, z = old_layout_fixture()
    assert "bodies.gmf.user.weight" in state and "bodies.mlp.tower.2.weight" in state
    n_users, n_items = (int(x) for x in z["shape"])
    model = NeuMF(**OLD_LAYOUT)
    model.set_state(state, n_users, n_items)
    np.testing.assert_array_equal(model.score_all(np.arange(n_users)), z["scores"])
    np.testing.assert_array_equal(model.item_embeddings(), z["item_embeddings"])
    assert sorted(model.get_state()) == ["item.weight", "out.bias", "out.weight", "tower.0.bias", "tower.0.weight",
                                         "tower.2.bias", "tower.2.weight", "user.weight"]
    with pytest.raises(ModelError, match="do not fit"):  # an old state for other options is still refused
        NeuMF(**{**OLD_LAYOUT, "mlp_layers": "16,8"}).set_state(state, n_users, n_items)


def test_neumf_weights_and_training_are_those_of_separate_tables():
    """Same seed, same initial weights as separate tables (drawn table by table in their order), and
    on the CPU the same training, through pre-training and the SGD phase."""
    init, state, z = old_layout_fixture()
    fresh = NeuMF(**OLD_LAYOUT)
    fresh.prepare(*(int(x) for x in z["shape"]))
    for k, v in NeuMFNet.from_bodies_state(init).items():
        np.testing.assert_array_equal(fresh.get_state()[k], v, err_msg=k)
    model = NeuMF(**OLD_LAYOUT)
    fit(model, tiny_split())
    for k, v in NeuMFNet.from_bodies_state(state).items():
        np.testing.assert_allclose(model.get_state()[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def ops_of_one_step(model, batch):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.batch_loss(batch).backward()
    return [e.name for e in prof.events()]


@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf"])
def test_a_step_looks_each_side_up_once(name):
    """NeuMF too: one lookup and one embedding backward per side (it had two of each, GMF's and MLP's)."""
    model = build(name, emb_dim=8, mlp_layers="16,8,4", pretrain=False)
    model.prepare(10, 30)
    batch = {"user": torch.tensor([0, 1, 2, 3]), "item": torch.tensor([5, 6, 7, 8]), "label": torch.ones(4)}
    names = ops_of_one_step(model, batch)
    assert names.count("aten::embedding") == 2
    assert names.count("aten::embedding_dense_backward") == 2
    embeddings = [m for m in model.module.modules() if isinstance(m, torch.nn.Embedding)]
    assert len(embeddings) == 2
    if name == "neumf":  # [GMF | MLP] columns side by side: 8 + 16/2
        assert [tuple(e.weight.shape) for e in embeddings] == [(10, 16), (30, 16)]
