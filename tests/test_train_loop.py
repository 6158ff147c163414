"""The shared training loop: samples, losses, early stopping, determinism, cancelling, devices."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from recviz.data.interactions import Interactions
from recviz.data.split import make_split
from recviz.errors import ModelError
from recviz.eval.protocols import evaluate
from recviz.models.mf import BPRMF
from recviz.models.ncf import GMF
from recviz.models import device as dev
from recviz.data.training_samples import epoch_samples, train_positives
from recviz.errors import Cancelled
from recviz.models.losses import bpr_loss, log_loss
from recviz.training.loop import GradientEpochs, fit
from tests.helpers import random_interactions

TIMING = ("seconds", "eval_seconds", "samples_per_second")


def small_split(seed=0, **kw):
    return make_split(random_interactions(seed=seed, **kw), "loo", n_candidates=20, cache=False)


def clustered_split(n_users=80, n_items=60, groups=4, per_user=10, noise=0.2, seed=0):
    """Users of group g mostly take items of group g: a signal validation can see improve, peak
    and decay (random data has none, so its best epoch is a coin flip)."""
    rng = np.random.default_rng(seed)
    group_items = np.array_split(rng.permutation(n_items), groups)
    rows = []
    for u in range(n_users):
        own = group_items[u % groups]
        k = rng.binomial(per_user, noise)
        others = np.setdiff1d(np.arange(n_items), own)
        items = np.r_[rng.choice(own, per_user - k, replace=False), rng.choice(others, k, replace=False)]
        rows += [(u, i, t) for t, i in enumerate(rng.permutation(items))]
    data = Interactions.from_frame(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))
    return make_split(data, "loo", n_candidates=20, cache=False)


def without_timing(history):
    return [{k: v for k, v in r.to_dict().items() if k not in TIMING} for r in history]


# ---- samples ----------------------------------------------------------------------------------------
def test_epoch_samples_are_unique_positives_plus_unseen_negatives():
    split = make_split(random_interactions(seed=3, behaviors=True), "loo", n_candidates=20, cache=False)
    users, items, seen = train_positives(split)
    train = split.train
    keys = set((train.user * train.n_items + train.item).tolist())
    assert len(keys) < len(train)  # the data repeats pairs (several behaviours) ...
    assert sorted((users * train.n_items + items).tolist()) == sorted(keys)  # ... positives do not

    s = epoch_samples(users, items, seen, np.random.default_rng(0), neg_ratio=4)
    p = len(users)
    assert {k: len(v) for k, v in s.items()} == {"user": 5 * p, "item": 5 * p, "label": 5 * p}
    assert s["label"].dtype == np.float32 and s["label"][:p].all() and not s["label"][p:].any()
    np.testing.assert_array_equal(s["user"][:p], users)
    np.testing.assert_array_equal(s["user"][p:], np.repeat(users, 4))  # 4 negatives per positive
    neg_keys = s["user"][p:] * train.n_items + s["item"][p:]
    assert not np.isin(neg_keys, list(keys)).any()  # never a train positive of that user
    assert len(np.unique(s["item"][p:])) > train.n_items // 2  # drawn across the catalogue

    pairs = epoch_samples(users, items, seen, np.random.default_rng(0), pairwise=True)
    assert set(pairs) == {"user", "item", "neg"} and len(pairs["neg"]) == p
    assert not np.isin(pairs["user"] * train.n_items + pairs["neg"], list(keys)).any()


def test_negatives_are_redrawn_each_epoch_and_seeded():
    users, items, seen = train_positives(small_split())
    rng = np.random.default_rng(7)
    first, second = (epoch_samples(users, items, seen, rng)["item"] for _ in range(2))
    assert (first != second).any()
    again = epoch_samples(users, items, seen, np.random.default_rng(7))["item"]
    np.testing.assert_array_equal(first, again)


# ---- losses -----------------------------------------------------------------------------------------
def test_log_loss_is_binary_cross_entropy_and_stable():
    logits, labels = torch.tensor([2.0, -1.0, 0.0]), torch.tensor([1.0, 0.0, 1.0])
    p = torch.sigmoid(logits)
    manual = -(labels * p.log() + (1 - labels) * (1 - p).log()).mean()
    assert log_loss(logits, labels).item() == pytest.approx(manual.item(), rel=1e-6)
    extreme = log_loss(torch.tensor([-200.0, 200.0]), torch.tensor([1.0, 0.0]))
    assert math.isfinite(extreme.item()) and extreme.item() == pytest.approx(200.0)


def test_bpr_loss_is_minus_log_sigmoid_of_the_margin():
    pos, neg = torch.tensor([3.0, 0.5]), torch.tensor([1.0, 0.5])
    manual = -torch.log(torch.sigmoid(pos - neg)).mean()
    assert bpr_loss(pos, neg).item() == pytest.approx(manual.item(), rel=1e-6)
    assert bpr_loss(torch.tensor([-100.0]), torch.tensor([100.0])).item() == pytest.approx(200.0)


# ---- the loop ---------------------------------------------------------------------------------------
def test_early_stopping_restores_the_best_epoch():
    split = clustered_split()
    model = GMF(emb_dim=16, lr=0.01, batch_size=64, epochs=40, patience=2, seed=0)
    history = fit(model, split)
    ndcg = [r.valid["NDCG@10"] for r in history]
    best = int(np.argmax(ndcg))  # first of equal maxima: only a strictly better epoch replaces it
    assert 0 < best < len(history) - 1  # a real peak: the weights kept are neither first nor last
    assert len(history) < 40  # it did stop early ...
    assert len(history) == best + 1 + 2  # ... exactly `patience` epochs after the best one
    assert model.best_epoch == best + 1 == history[-1].best_epoch_so_far
    assert evaluate(model, split, "valid").metrics == history[best].valid


def test_reports_have_the_documented_fields():
    split = small_split()
    seen = []
    history = fit(GMF(emb_dim=8, epochs=2, patience=0), split, on_epoch=seen.append)
    assert seen == history and [r.epoch for r in history] == [1, 2]
    r = history[0]
    assert set(r.to_dict()) == {"epoch", "phase", "train_loss", "valid", "seconds", "eval_seconds", "samples",
                      "samples_per_second", "best_epoch_so_far"}
    users, _, _ = train_positives(split)
    assert r.phase == "gmf" and r.samples == 5 * len(users)
    assert {"HR@10", "NDCG@10"} <= set(r.valid) and r.train_loss > 0


@pytest.mark.parametrize("cls", [GMF, BPRMF])
def test_same_seed_same_numbers_other_seed_other_numbers(cls):
    split = small_split()

    def train(seed):
        model = cls(emb_dim=8, lr=0.01, batch_size=32, epochs=3, patience=0, seed=seed)
        return model, without_timing(fit(model, split))

    (a, ha), (b, hb), (_, hc) = train(1), train(1), train(2)
    assert ha == hb
    for k, v in a.get_state().items():
        np.testing.assert_array_equal(v, b.get_state()[k])
    assert [r["train_loss"] for r in ha] != [r["train_loss"] for r in hc]


def test_should_stop_cancels_within_poll_interval():
    split = small_split()  # ~1000 positives → ~5000 samples: ~600 batches of 8 per epoch
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) >= 3  # before epoch 1, after 50 batches, after 100 batches

    model = GMF(emb_dim=8, batch_size=8, epochs=5, patience=0)
    with pytest.raises(Cancelled) as info:
        fit(model, split, on_epoch=lambda r: pytest.fail("no epoch should finish"), should_stop=should_stop)
    assert info.value.history == [] and len(polls) == 3


def test_cancel_between_epochs_keeps_finished_epochs_and_best_weights():
    split = small_split()
    done = []
    model = GMF(emb_dim=8, lr=0.01, epochs=10, patience=0)
    with pytest.raises(Cancelled) as info:
        fit(model, split, on_epoch=done.append, should_stop=lambda: len(done) >= 2)
    assert info.value.history == done and len(done) == 2
    best = max(done, key=lambda r: r.valid["NDCG@10"])
    assert model.best_epoch == best.epoch
    assert evaluate(model, split, "valid").metrics == best.valid


def test_bad_options_are_model_errors():
    with pytest.raises(ModelError, match="batch_size"):
        GMF(batch_size=0)
    with pytest.raises(ModelError, match="lr"):
        GMF(lr=-1.0)


# ---- devices and seeds ------------------------------------------------------------------------------
def test_cuda_without_cuda_is_an_error_not_a_cpu_fallback(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:0", "CUDA"):
        with pytest.raises(ModelError, match="no CUDA"):
            dev.pick_device(name)
    assert dev.pick_device("auto") == torch.device("cpu")
    assert dev.pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelError, match="no CUDA"):
        fit(GMF(device="cuda", epochs=1), small_split())


def test_auto_picks_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert dev.pick_device("auto").type == "cuda"


def test_unknown_device_is_an_error():
    for name in ("banana", "tpu"):
        with pytest.raises(ModelError):
            dev.pick_device(name)


def test_seed_everything_and_threads():
    rng = dev.seed_everything(3)
    a, x = torch.rand(3), rng.random()
    rng = dev.seed_everything(3)
    assert torch.equal(a, torch.rand(3)) and x == rng.random()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert dev.set_threads(0) == 1 and torch.get_num_threads() == 1  # auto: one thread per run
        assert dev.set_threads(2) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ModelError):
        dev.set_threads(-1)


def test_cpu_training_flushes_subnormal_floats():
    """Adam's v drifts into subnormals under weight decay; x86 computes those ~100× slower."""
    try:
        fit(GMF(emb_dim=4, epochs=1, device="cpu"), small_split())
        assert (torch.tensor([1e-39]) * 1.0).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


# ---- the batch loop: views made once, no host sync, mixed precision -----------------------------------
def gmf_epochs(**options):
    model = GMF(emb_dim=8, epochs=1, patience=0, batch_size=64, **options)
    split = small_split()
    model.begin(split)
    return GradientEpochs(model.plan(model.phases()[0], split)), model


def test_batches_are_views_of_the_shuffled_epoch_made_before_the_first_step():
    steps, _ = gmf_epochs()
    data, n = steps.samples()
    batches = steps.batches(data)
    assert [len(b["user"]) for b in batches] == [64] * (n // 64) + ([n % 64] if n % 64 else [])
    for key, whole in data.items():
        assert torch.equal(torch.cat([b[key] for b in batches]), whole)
        assert all(b[key]._base is whole and b[key].data_ptr() == whole[64 * k:].data_ptr()
                   for k, b in enumerate(batches))
    seen = []
    assert steps.batch_grads is not None  # GMF's hand-written step takes the batch (not batch_loss)
    take = steps.batch_grads
    steps.batch_grads = lambda batch: seen.append(batch) or take(batch)
    losses = steps.run(batches, lambda: False)
    assert [id(b) for b in seen] == [id(b) for b in batches] and losses.shape == (len(batches),)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_a_cuda_step_never_waits_for_the_host(precision):
    steps, _ = gmf_epochs(device="cuda", precision=precision)
    data, _ = steps.samples()
    batches = steps.batches(data)
    steps.run(batches[:2], lambda: False)  # warm-up: lazy state, first kernels
    torch.cuda.set_sync_debug_mode("error")
    try:
        steps.run(batches[2:], lambda: False)
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_mixed_precision_is_cuda_only_and_the_run_records_what_it_used():
    from recviz.config import RunConfig
    from recviz.experiments import experiment

    config = RunConfig.build(dataset="synthetic:users=40,items=60,interactions=600", model="gmf", epochs=1,
                             device="cpu", precision="bf16", candidates=20)
    assert config.options["precision"] == "bf16"
    result = experiment.run(config)
    assert result.model.precision == "fp32" and result.summary()["precision"] == "fp32"
    with pytest.raises(Exception, match="precision"):
        RunConfig.build(model="gmf", precision="fp8")


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_the_mixed_precision_step_trains(precision):
    """The autocast path (and fp16's loss scaling), run here on the CPU by asking the loop directly."""
    import dataclasses

    steps, _ = gmf_epochs()
    steps = GradientEpochs(dataclasses.replace(steps.plan, precision=precision))
    before = {k: v.clone() for k, v in steps.module.state_dict().items()}
    loss, n = steps.epoch(lambda: False)
    assert math.isfinite(loss) and 0 < loss < 1 and n > 0
    assert all(not torch.equal(before[k], v) for k, v in steps.module.state_dict().items())
    assert (steps.scaler is not None) == (precision == "fp16")


def test_loss_scaling_with_the_direct_adam_is_exact_and_skips_overflow():
    """fp16's GradScaler with recviz's Adam: a power-of-two scale unscales exactly in the kernel (the
    same weights as without scaling), and a step with an inf gradient changes nothing."""
    from recviz.training.optim import Adam

    torch.manual_seed(0)
    x = torch.randn(16, 6)
    plain, scaled = torch.nn.Linear(6, 3), torch.nn.Linear(6, 3)
    scaled.load_state_dict(plain.state_dict())
    opt_p, opt_s = Adam(plain.parameters(), lr=0.01), Adam(scaled.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    for _ in range(3):
        plain(x).pow(2).mean().backward()
        opt_p.step()
        opt_p.zero_grad()
        scaler.scale(scaled(x).pow(2).mean()).backward()
        scaler.step(opt_s)
        scaler.update()
        opt_s.zero_grad()
    for a, b in zip(plain.parameters(), scaled.parameters()):
        assert torch.equal(a, b)
    kept = [p.detach().clone() for p in scaled.parameters()] + [s.clone() for s in opt_s.steps]
    scaler.scale(scaled(x * float("inf")).pow(2).mean()).backward()
    scaler.step(opt_s)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(kept, [*scaled.parameters(), *opt_s.steps]))
    assert scaler.get_scale() == 2.0 ** 9
