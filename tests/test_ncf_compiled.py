"""The compiled NCF step (`recviz/native/ncf.c`, taken by `recviz.models.ncf_step.NCFStep` for GMF,
MLP and NeuMF networks with float32 weights on the CPU, dense or row-sparse tables, dropout on or
off) against the torch operations it replaces: the same loss and gradients to float32 rounding on
batches with repeated users and items, the same weights after many Adam steps (lazy Adam for
row-sparse tables), a bad id refused before anything is written, and the torch path wherever the
kernel does not apply."""

import ctypes

import pytest
import torch

from recviz import native
from recviz.models.ncf import GMFBody, MLPBody, NCFNet, NeuMFNet
from recviz.training.optim import make_optimizer, sparse_tables

N_USERS, N_ITEMS, DIM = 30, 400, 19  # a width that is not a multiple of the kernel's 8 lanes
LAYERS = (22, 13, 5)
WIDE = (16, 8, 64, 8)  # a middle layer wider than the first: the scratch's sums must fit the widest

pytestmark = pytest.mark.skipif(native.kernel("ncf_step_f32") is None, reason="no C compiler here")
NETWORKS = {"gmf": lambda p: NCFNet(gmf=GMFBody(N_USERS, N_ITEMS, DIM)),
            "mlp": lambda p: NCFNet(mlp=MLPBody(N_USERS, N_ITEMS, LAYERS, p)),
            "neumf": lambda p: NeuMFNet(N_USERS, N_ITEMS, DIM, LAYERS, p),
            "mlp-wide": lambda p: NCFNet(mlp=MLPBody(N_USERS, N_ITEMS, WIDE, p)),
            "neumf-wide": lambda p: NeuMFNet(N_USERS, N_ITEMS, DIM, WIDE, p)}
# (network, dropout): GMF has no tower
CASES = [("gmf", 0.0), ("mlp", 0.0), ("mlp", 0.3), ("neumf", 0.0), ("neumf", 0.3), ("mlp-wide", 0.3),
         ("neumf-wide", 0.0)]


def network(name="neumf", dropout=0.0, seed=1, sparse=False):
    torch.manual_seed(seed)
    net = NETWORKS[name](dropout).train()
    with torch.no_grad():  # weights far from zero: ReLUs cut, every gradient is non-trivial
        for p in net.parameters():
            p.normal_(0, 0.7)
    for table in net.modules():
        if isinstance(table, torch.nn.Embedding):
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


def seeded(step, b, seed):
    torch.manual_seed(seed)  # dropout's seeds
    return step(b)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("name, dropout", CASES)
def test_one_step_gives_torchs_loss_and_gradients(name, dropout, sparse):
    compiled, plain = network(name, dropout, sparse=sparse), network(name, dropout, sparse=sparse)
    fast, slow = compiled.hand_step(), torch_step(plain)
    for seed in range(3):
        b = batch(seed=seed)
        lf, ls = seeded(fast, b, seed), seeded(slow, b, seed)
        assert fast.out_grads is not None and slow.out_grads is None  # each took the path meant
        assert torch.allclose(lf, ls, rtol=1e-6, atol=0)
        for gf, gs in zip(grads(compiled), grads(plain)):
            assert gf.shape == gs.shape and torch.allclose(gf, gs, rtol=1e-5, atol=1e-6)
            assert gs.abs().sum() > 0  # nothing vacuous: every weight has a gradient
        tables = [p for k, p in compiled.named_parameters() if k.endswith(("user.weight", "item.weight"))]
        assert len(tables) == 2 and all(p.grad.is_sparse == sparse for p in tables)
        # rows nobody in the batch read have a zero gradient, not last batch's
        unread = torch.ones(N_ITEMS, dtype=torch.bool)
        unread[b["item"]] = False
        assert unread.any() and (grads(compiled)[1][unread] == 0).all()


@pytest.mark.parametrize("name, dropout", CASES)
def test_dropout_masks_follow_the_seed_and_are_off_in_eval_mode(name, dropout):
    net = network(name, dropout)
    step, b = net.hand_step(), batch()
    first = (seeded(step, b, 0), grads(net))
    again = (seeded(step, b, 0), grads(net))
    other = (seeded(step, b, 1), grads(net))
    assert first[0] == again[0] and all(torch.equal(x, y) for x, y in zip(first[1], again[1]))
    assert (first[0] != other[0]) == bool(dropout)
    net.eval()
    plain = network(name, dropout).eval()
    lf, ls = seeded(step, b, 2), seeded(torch_step(plain), b, 3)  # no masks: the seeds do not matter
    assert torch.allclose(lf, ls, rtol=1e-6) and all(torch.allclose(x, y, rtol=1e-5, atol=1e-6)
                                                     for x, y in zip(grads(net), grads(plain)))


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("name, dropout", [("gmf", 0.0), ("neumf", 0.3)])
def test_many_adam_steps_end_where_the_torch_step_ends(name, dropout, sparse):
    """Dense Adam, or the lazy Adam of row-sparse tables, as the training loop makes them."""
    compiled, plain = network(name, dropout, sparse=sparse), network(name, dropout, sparse=sparse)
    fast, slow = compiled.hand_step(), torch_step(plain)
    opt_f, opt_s = (make_optimizer(net.parameters(), "adam", 0.01, 0.0, torch.device("cpu"), sparse_tables(net))
                    for net in (compiled, plain))
    for seed in range(300):
        b = batch(seed=seed)
        seeded(fast, b, seed), seeded(slow, b, seed)
        opt_f.step(), opt_s.step()
    for pf, ps in zip(compiled.parameters(), plain.parameters()):
        assert torch.allclose(pf, ps, rtol=1e-3, atol=1e-5), (pf - ps).abs().max()


@pytest.mark.parametrize("name", ["gmf", "neumf"])
def test_an_id_outside_the_table_is_refused_before_anything_is_written(name):
    net = network(name)
    step = net.hand_step()
    step(batch())
    before = grads(net)
    bad = batch()
    bad["item"][100] = N_ITEMS
    with pytest.raises(IndexError, match="out of range"):
        step(bad)
    assert all(torch.equal(a, b) for a, b in zip(before, grads(net)))


@pytest.mark.parametrize("how", ["float64", "int32 ids", "float64 labels", "no BLAS", "empty batch"])
def test_the_torch_step_runs_where_the_kernel_does_not_apply(how):
    net, b = network(), batch()
    if how == "float64":
        net = net.double()
        b["label"] = b["label"].double()
    if how == "int32 ids":
        b["user"], b["item"] = b["user"].int(), b["item"].int()
    if how == "float64 labels":
        b["label"] = b["label"].double()
    if how == "empty batch":
        b = {k: v[:0] for k, v in b.items()}
    step = net.hand_step()
    if how == "no BLAS":  # torch's library exports no sgemm_: only GMF (no products) is compiled
        step._sgemm = None
    reference = torch_step(network().to(next(net.parameters()).dtype))
    loss, expected = step(b), reference(b)
    assert step.out_grads is None or how in ("int32 ids", "float64 labels", "empty batch")
    assert torch.allclose(loss.double(), expected.double(), rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", ["gmf", "neumf"])
def test_batches_of_changing_size_leave_no_stale_rows(name):
    """The dense gradients are zeroed where the step before wrote them, and the scratch grows
    with the batch: after a big batch, a small one, a bigger one again and a refused one, every
    gradient is still the torch step's."""
    compiled, plain = network(name), network(name)
    fast, slow = compiled.hand_step(), torch_step(plain)
    for n, seed in ((300, 0), (7, 1), (512, 2), (1, 3), (40, 4)):
        b = batch(n, seed)
        if seed == 3:
            bad = dict(b, user=torch.tensor([N_USERS]))
            with pytest.raises(IndexError):
                fast(bad)
        fast(b), slow(b)
        for gf, gs in zip(grads(compiled), grads(plain)):
            assert torch.allclose(gf, gs, rtol=1e-5, atol=1e-6), n


def test_the_blas_product_is_checked_before_use():
    """`native.blas_sgemm` hands out torch's sgemm only after a small product with a known answer
    (each transpose case the step uses); a function that computes nothing is refused."""
    check = native.kernel("blas_check_f32")
    found = native.blas_sgemm()
    assert found is None or check(found) == 0
    does_nothing = ctypes.cast(ctypes.CDLL(None).getppid, ctypes.c_void_p).value  # ignores its arguments
    assert check(does_nothing) == -1


@pytest.mark.parametrize("name", ["gmf", "neumf"])
def test_a_torch_step_between_compiled_ones_leaves_no_stale_rows(name):
    """A batch the kernel does not take (float64 labels) runs the torch operations, which write the
    dense gradients whole; the kernel's next step must then zero them whole too, not only where its
    own last batch wrote."""
    compiled, plain = network(name), network(name)
    fast, slow = compiled.hand_step(), torch_step(plain)
    for seed, labels in ((0, torch.float32), (1, torch.float64), (2, torch.float32)):
        b = batch(seed=seed)
        b["label"] = b["label"].to(labels)
        fast(b), slow(b)
        assert (fast.out_grads is not None) and all(torch.allclose(gf, gs, rtol=1e-5, atol=1e-6)
                                                    for gf, gs in zip(grads(compiled), grads(plain))), seed


def test_the_batch_sums_are_as_accurate_as_torchs():
    """Against float64, the gradients that sum over the whole batch (the biases', h's) are no
    further off than the torch step's in float32, whose reductions sum pairwise. Summed one row
    after another in float32 over 1024 rows they were 5–10× further."""
    reference = network("neumf", seed=4)
    with torch.no_grad():  # the module's own scale of weights: sums of many small terms
        for k, p in reference.named_parameters():
            p.mul_(0.05 if "weight" in k and p.dim() == 2 and p.shape[0] in (N_USERS, N_ITEMS) else 0.5)
    b = batch(n=1024, seed=9)

    def gradients(dtype, compiled):
        net = network("neumf", seed=4).to(dtype)
        net.load_state_dict({k: v.to(dtype) for k, v in reference.state_dict().items()})
        step = net.hand_step() if compiled else torch_step(net)
        step(dict(b, label=b["label"].to(dtype)))
        return {k: p.grad.double() for k, p in net.named_parameters()}
    exact, by_torch, by_kernel = gradients(torch.float64, False), gradients(torch.float32, False), gradients(torch.float32, True)
    for k in [k for k in exact if k.endswith("bias") or k == "out.weight"]:
        err = lambda g: float((g[k] - exact[k]).norm() / exact[k].norm())  # noqa: E731
        assert err(by_kernel) <= 2 * err(by_torch) + 1e-9, (k, err(by_kernel), err(by_torch))
