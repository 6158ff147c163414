"""The hand-written NCF training step (`recviz.models.ncf_step`) against autograd, and the loop's
choice between them; the shared step counter of Adam."""

import dataclasses

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from recviz.models.dropout import Dropout
from recviz.models.losses import log_loss
from recviz.models.mf import MF
from recviz.models.ncf import GMF, MLP, GMFBody, MLPBody, NCFNet, NeuMF, NeuMFNet
from recviz.models.ncf_step import tower_layers
from recviz.training.loop import GradientEpochs
from recviz.training.optim import Adam
from tests.test_train_loop import small_split

N_USERS, N_ITEMS = 7, 9


def network(name: str, dropout: float = 0.0, sparse: bool = False) -> nn.Module:
    torch.manual_seed(1)
    net = {"gmf": lambda: NCFNet(gmf=GMFBody(N_USERS, N_ITEMS, 4)),
           "mlp": lambda: NCFNet(mlp=MLPBody(N_USERS, N_ITEMS, (6, 5, 3), dropout)),
           "neumf": lambda: NeuMFNet(N_USERS, N_ITEMS, 4, (6, 5, 3), dropout)}[name]()
    for table in net.modules():
        if isinstance(table, nn.Embedding):
            table.sparse = sparse
    with torch.no_grad():  # weights far from zero, so ReLUs cut and every gradient is non-trivial
        for p in net.parameters():
            p.normal_(0, 0.7)
    return net


def batch(dtype, n=16, seed=0):
    """Random pairs with repeated users and items (their rows' gradients must add up)."""
    g = torch.Generator().manual_seed(seed)
    return {"user": torch.randint(0, N_USERS, (n,), generator=g), "item": torch.randint(0, N_ITEMS, (n,), generator=g),
            "label": torch.randint(0, 2, (n,), generator=g).to(dtype)}


def autograd_grads(net, b, seed=5):
    torch.manual_seed(seed)  # dropout's masks
    loss = log_loss(net(b["user"], b["item"]), b["label"])
    loss.backward()
    grads = {k: p.grad.to_dense() if p.grad.is_sparse else p.grad.clone() for k, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = None
    return loss.detach(), grads


def hand_grads(net, b, step=None, seed=5):
    step = step or net.hand_step()
    torch.manual_seed(seed)
    loss = step(b)
    grads = {k: p.grad.to_dense() if p.grad.is_sparse else p.grad.clone() for k, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = None
    return loss, grads


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("name", ["gmf", "mlp", "neumf"])
@pytest.mark.parametrize("sparse", [False, True])
def test_the_hand_written_gradients_are_autograds(name, dropout, dtype, tol, sparse):
    if name == "gmf" and dropout:
        pytest.skip("GMF has no tower")
    net = network(name, dropout, sparse).to(dtype).train()
    step = net.hand_step()
    for seed in range(3):  # several batches through one step object (its reused table buffers)
        b = batch(dtype, seed=seed)
        want_loss, want = autograd_grads(net, b, seed)
        got_loss, got = hand_grads(net, b, step, seed)
        assert set(got) == set(want)
        for k in want:
            assert got[k].dtype == dtype and torch.allclose(got[k], want[k], rtol=tol, atol=tol), k
            assert want[k].abs().sum() > 0, k  # nothing vacuous: every weight has a gradient
        assert torch.allclose(got_loss, want_loss, rtol=tol, atol=tol)
    step(b)
    tables = [p for k, p in net.named_parameters() if k.endswith(("user.weight", "item.weight"))]
    assert len(tables) == 2 and all(p.grad.is_sparse == sparse for p in tables)


def test_dropout_draws_the_towers_masks_and_is_off_in_eval_mode():
    """Same seed, same masks as the tower's Dropout modules: the gradients are equal only if every
    mask is (float64: torch's operations on both sides, in the same order). In eval mode there is
    no dropout (and the gradient is the eval network's). The compiled float32 step draws them too:
    test_the_hand_written_gradients_are_autograds."""
    net = network("neumf", dropout=0.5).double()
    b = batch(torch.float64)
    assert all(torch.equal(hand_grads(net, b)[1][k], g) for k, g in autograd_grads(net, b)[1].items())
    other_seed = hand_grads(net, b, seed=6)[1]
    assert not all(torch.equal(other_seed[k], g) for k, g in autograd_grads(net, b)[1].items())
    net.eval()
    _, want = autograd_grads(net, b, seed=7)
    _, got = hand_grads(net, b, seed=8)
    assert all(torch.allclose(got[k], want[k]) for k in want)


def test_a_weight_moved_to_new_storage_is_read_from_there():
    net = network("neumf")
    step = net.hand_step()
    hand_grads(net, batch(torch.float32), step)
    net.double()  # every weight is a new tensor now
    b = batch(torch.float64)
    _, want = autograd_grads(net, b)
    _, got = hand_grads(net, b, step)
    assert all(got[k].dtype == torch.float64 and torch.allclose(got[k], want[k]) for k in want)


def test_only_a_plain_relu_tower_has_a_hand_written_step():
    linear = lambda: nn.Linear(3, 3)  # noqa: E731
    assert tower_layers(nn.Sequential(linear(), nn.ReLU(), linear(), nn.ReLU()))[1] == 0.0
    assert tower_layers(nn.Sequential(linear(), nn.ReLU(), Dropout(0.2), linear(), nn.ReLU(), Dropout(0.2)))[1] == 0.2
    for odd in (nn.Sequential(linear(), nn.Tanh()), nn.Sequential(linear()), nn.Sequential(linear(), nn.ReLU(inplace=True)),
                nn.Sequential(linear(), nn.ReLU(), Dropout(0.2), linear(), nn.ReLU(), Dropout(0.3)),
                nn.Sequential(linear(), nn.ReLU(), Dropout(1.0)),
                nn.Sequential(linear(), nn.ReLU(), nn.Dropout(0.2))):  # torch's masks, not the step's
        assert tower_layers(odd) is None


def plan_of(model):
    split = small_split()
    model.begin(split)
    return model.plan(model.phases()[-1], split)


TRAIN = {"batch_size": 64, "l2": 1e-4, "seed": 3}


@pytest.mark.parametrize("make", [lambda: GMF(emb_dim=8, **TRAIN), lambda: MLP(mlp_layers="16,8", dropout=0.1, **TRAIN),
                                  lambda: NeuMF(emb_dim=8, mlp_layers="16,8", dropout=0.1, pretrain=False, **TRAIN)])
def test_the_loop_trains_ncf_by_hand_and_ends_where_autograd_ends(make):
    """Two seeded epochs (Adam, L2, dropout) by the hand-written step and by autograd: the same
    weights within float tolerance, and the same epoch losses."""
    runs = []
    for autograd in (False, True):
        steps = GradientEpochs(plan_of(make()), autograd=autograd)
        assert (steps.batch_grads is None) == autograd
        losses = [steps.epoch(lambda: False)[0] for _ in range(2)]
        runs.append((losses, {k: v.clone() for k, v in steps.module.state_dict().items()}))
    (hand_losses, hand), (auto_losses, auto) = runs
    assert hand_losses == pytest.approx(auto_losses, rel=1e-5)
    assert all(torch.allclose(hand[k], auto[k], rtol=1e-4, atol=1e-6) for k in auto)


def test_autograd_where_there_is_no_hand_written_step():
    assert GradientEpochs(plan_of(MF(emb_dim=4))).batch_grads is None  # another model
    plan = plan_of(GMF(emb_dim=4))
    assert GradientEpochs(plan).batch_grads is not None
    assert GradientEpochs(dataclasses.replace(plan, precision="bf16")).batch_grads is None  # autocast
    frozen = GMF(emb_dim=4)
    split = small_split()
    frozen.begin(split)
    frozen.prepare(split.data.n_users, split.data.n_items)
    frozen.module.out.bias.requires_grad_(False)
    assert frozen.batch_grads() is None


def aten_ops(fn, name=None) -> int:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(1 for ev in prof.events() if ev.name.startswith("aten::") and (name is None or ev.name == name))


def test_adam_advances_one_shared_step_count_per_step():
    """Before, each weight's count had its own add_ (8 here); one add_ now, and the same counts."""
    net = network("neumf")
    opt = Adam(net.parameters(), lr=0.01)
    step = net.hand_step()
    step(batch(torch.float32))
    assert aten_ops(opt.step, "aten::add_") == 1
    assert len(opt.params) == 8 and [float(c) for c in opt.steps] == [1.0] * 8


def test_the_hand_written_step_runs_fewer_operations_than_autograd():
    net, b = network("neumf", dropout=0.1), batch(torch.float32, n=64)
    step = net.hand_step()

    def by_autograd():
        log_loss(net(b["user"], b["item"]), b["label"]).backward()
    assert aten_ops(lambda: step(b)) < 0.9 * aten_ops(by_autograd)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_cuda_the_hand_written_step_is_autograds_and_never_waits_for_the_host():
    net = network("neumf", dropout=0.5).cuda().train()
    b = {k: v.cuda() for k, v in batch(torch.float32, n=256).items()}
    _, want = autograd_grads(net, b)
    step = net.hand_step()
    hand_grads(net, b, step)  # warm-up: binds the weights, allocates the table buffers
    torch.cuda.set_sync_debug_mode("error")
    try:
        _, got = hand_grads(net, b, step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.allclose(got[k], want[k], rtol=1e-4, atol=1e-6) for k in want)
