"""GMF's compiled step (`recviz/native/gmf.c`, taken by `recviz.models.ncf_step.NCFStep` for a GMF
network with float32 tables on the CPU, dense or row-sparse) against the torch operations it
replaces: the same loss and gradients to float32 rounding on batches with repeated users and items,
the same weights after many Adam steps (lazy Adam for row-sparse tables), a bad id refused before
anything is written, and the torch path wherever the kernel does not apply."""

import pytest
import torch

from recviz import native
from recviz.models.ncf import GMFBody, NCFNet
from recviz.training.optim import make_optimizer, sparse_tables

N_USERS, N_ITEMS, DIM = 30, 400, 19  # a width that is not a multiple of the kernel's 8 lanes

pytestmark = pytest.mark.skipif(native.kernel("gmf_step_f32") is None, reason="no C compiler here")


def gmf(seed=1, sparse=False):
    torch.manual_seed(seed)
    net = NCFNet(gmf=GMFBody(N_USERS, N_ITEMS, DIM))
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.7)
    for table in (net.bodies["gmf"].user, net.bodies["gmf"].item):
        table.sparse = sparse
    return net


def batch(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"user": torch.randint(0, N_USERS, (n,), generator=g), "item": torch.randint(0, N_ITEMS, (n,), generator=g),
            "label": torch.randint(0, 2, (n,), generator=g).float()}


def torch_step(net):
    step = net.hand_step()
    step._native = None  # what RECVIZ_NATIVE=0 or no compiler gives
    return step


def grads(net):
    return [p.grad.to_dense() if p.grad.is_sparse else p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("sparse", [False, True])
def test_one_step_gives_torchs_loss_and_gradients(sparse):
    compiled, plain = gmf(sparse=sparse), gmf(sparse=sparse)
    fast, slow = compiled.hand_step(), torch_step(plain)
    for seed in range(3):
        b = batch(seed=seed)
        lf, ls = fast(b), slow(b)
        assert fast.out_grads is not None and slow.out_grads is None  # each took the path meant
        assert torch.allclose(lf, ls, rtol=1e-6, atol=0)
        for gf, gs in zip(grads(compiled), grads(plain)):
            assert gf.shape == gs.shape and torch.allclose(gf, gs, rtol=1e-5, atol=1e-7)
        # rows nobody in the batch read have a zero gradient, not last batch's
        assert compiled.bodies["gmf"].item.weight.grad.is_sparse == sparse
        unread = torch.ones(N_ITEMS, dtype=torch.bool)
        unread[b["item"]] = False
        assert unread.any() and (grads(compiled)[1][unread] == 0).all()


@pytest.mark.parametrize("sparse", [False, True])
def test_many_adam_steps_end_where_the_torch_step_ends(sparse):
    """Dense Adam, or the lazy Adam of row-sparse tables, as the training loop makes them."""
    compiled, plain = gmf(sparse=sparse), gmf(sparse=sparse)
    fast, slow = compiled.hand_step(), torch_step(plain)
    opt_f, opt_s = (make_optimizer(net.parameters(), "adam", 0.01, 0.0, torch.device("cpu"), sparse_tables(net))
                    for net in (compiled, plain))
    for seed in range(300):
        b = batch(seed=seed)
        fast(b), slow(b)
        opt_f.step(), opt_s.step()
    for pf, ps in zip(compiled.parameters(), plain.parameters()):
        assert torch.allclose(pf, ps, rtol=1e-3, atol=1e-5), (pf - ps).abs().max()


def test_an_id_outside_the_table_is_refused_before_anything_is_written():
    net = gmf()
    step = net.hand_step()
    step(batch())
    before = grads(net)
    bad = batch()
    bad["item"][100] = N_ITEMS
    with pytest.raises(IndexError, match="out of range"):
        step(bad)
    assert all(torch.equal(a, b) for a, b in zip(before, grads(net)))


@pytest.mark.parametrize("how", ["float64", "int32 ids", "float64 labels"])
def test_the_torch_step_runs_where_the_kernel_does_not_apply(how):
    net = gmf()
    b = batch()
    if how == "float64":
        net = net.double()
        b["label"] = b["label"].double()
    if how == "int32 ids":
        b["user"], b["item"] = b["user"].int(), b["item"].int()
    if how == "float64 labels":
        b["label"] = b["label"].double()
    step = net.hand_step()
    reference = torch_step(gmf().to(next(net.parameters()).dtype))
    loss, expected = step(b), reference(b)
    assert step.out_grads is None or how in ("int32 ids", "float64 labels")
    assert torch.allclose(loss.double(), expected.double(), rtol=1e-6)


def test_batches_of_changing_size_leave_no_stale_rows():
    """The dense gradients are zeroed where the step before wrote them: after a big batch, a small
    one, a bigger one again and a refused one, every gradient is still the torch step's."""
    compiled, plain = gmf(), gmf()
    fast, slow = compiled.hand_step(), torch_step(plain)
    for n, seed in ((300, 0), (7, 1), (512, 2), (1, 3), (40, 4)):
        b = batch(n, seed)
        if seed == 3:
            bad = dict(b, user=torch.tensor([N_USERS]))
            with pytest.raises(IndexError):
                fast(bad)
        fast(b), slow(b)
        for gf, gs in zip(grads(compiled), grads(plain)):
            assert torch.allclose(gf, gs, rtol=1e-5, atol=1e-7), n
