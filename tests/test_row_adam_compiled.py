"""The compiled lazy-Adam update (`recviz/native/row_adam.c` through `recviz.native`):
the same update as RowAdam's torch operations, to float32 rounding, for every case they handle;
refused ids never write; no compiler means the torch operations, not an error."""

import pytest
import torch
from torch import nn

from recviz import native
from recviz.training.optim import RowAdam

KERNEL = "row_adam_f32"
pytestmark = pytest.mark.skipif(native.kernel(KERNEL) is None, reason="no C compiler: the torch operations run instead")


def train(compiled: bool, weight_decay: float, steps: int = 300, rows: int = 50, dim: int = 64, repeats=True):
    """A sparse table trained on a fixed random objective; batches repeat rows (or not)."""
    torch.manual_seed(0)
    emb = nn.Embedding(rows, dim, sparse=True)
    opt = RowAdam(emb.parameters(), lr=0.01, weight_decay=weight_decay, compiled=compiled)
    assert (opt.kernel is not None) == compiled
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = (torch.randint(0, rows, (40,), generator=gen) if repeats
               else torch.randperm(rows, generator=gen)[:40])
        emb.weight.grad = None
        (emb(ids) * torch.randn(40, dim, generator=gen)).sum().backward()
        opt.step()
    return emb.weight.detach(), opt


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("repeats", [True, False])
def test_the_compiled_update_equals_the_torch_operations(weight_decay, repeats):
    """Repeated rows summed, L2 or not. One step: equal to float32 rounding (not bit for bit:
    torch's vectorised sqrt is not always correctly rounded, C's is). 1,100 steps (the bias tables
    outgrown once: 1,024 counts, then more): step counts exactly equal, weights and moments within
    the drift those last-bit differences accumulate."""
    for steps, rtol, atol in ((1, 1.3e-6, 1e-8), (1100, 1e-3, 1e-6)):
        compiled, fast = train(True, weight_decay, steps=steps, repeats=repeats)
        reference, slow = train(False, weight_decay, steps=steps, repeats=repeats)
        assert torch.equal(fast.steps[0], slow.steps[0])
        torch.testing.assert_close(compiled, reference, rtol=rtol, atol=atol)
        torch.testing.assert_close(fast.moments[0], slow.moments[0], rtol=rtol, atol=atol)
        assert (fast._slots[0] == -1).all()  # the scratch is left clean for the next step
    assert len(next(iter(fast.corrections.values()))[0]) > 1100  # the bias tables were outgrown


def test_a_row_outside_the_table_is_refused_before_anything_moves():
    emb = nn.Embedding(4, 3, sparse=True)
    opt = RowAdam(emb.parameters(), lr=0.1)
    before = emb.weight.detach().clone()
    emb.weight.grad = torch.sparse_coo_tensor(torch.tensor([[1, 4]]), torch.ones(2, 3), (4, 3), check_invariants=False)
    with pytest.raises(IndexError, match="4-row table"):
        opt.step()
    assert torch.equal(emb.weight, before) and not opt.steps[0].any() and not opt.moments[0].any()


def test_the_kernel_is_built_once_into_its_cache_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECVIZ_NATIVE_CACHE", str(tmp_path))
    assert native.kernel(KERNEL) is not None
    built = list(tmp_path.glob("row_adam-*.so"))
    assert [p.name for p in tmp_path.iterdir()] == [built[0].name]  # no temporary file left
    stamp = built[0].stat().st_mtime_ns
    native._library.cache_clear()  # as a new process would
    assert native.kernel(KERNEL) is not None and built[0].stat().st_mtime_ns == stamp


def test_without_a_compiler_the_torch_operations_run(monkeypatch):
    monkeypatch.setattr(native, "compiler", lambda: None)
    assert native.kernel(KERNEL) is None
    emb = nn.Embedding(4, 3, sparse=True)
    opt = RowAdam(emb.parameters(), lr=0.1)
    before = emb.weight.detach().clone()
    emb(torch.tensor([2])).sum().backward()
    opt.step()
    assert opt.kernel is None and opt.steps[0].tolist() == [0, 0, 1, 0]
    assert torch.equal(emb.weight[[0, 1, 3]], before[[0, 1, 3]]) and not torch.equal(emb.weight[2], before[2])


def test_a_compiler_that_fails_or_recviz_native_0_means_the_torch_operations(monkeypatch, tmp_path):
    monkeypatch.setenv(native.DISABLE, "0")
    assert native.kernel(KERNEL) is None
    monkeypatch.delenv(native.DISABLE)
    broken = tmp_path / "broken-cc"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("CC", str(broken))
    monkeypatch.setenv("RECVIZ_NATIVE_CACHE", str(tmp_path / "cache"))
    assert native.kernel(KERNEL) is None  # no error: the caller runs the torch operations
    assert not list((tmp_path / "cache").glob("*"))  # nothing half-built left behind


def test_huge_pages_are_advice_zeros_stay_zeros_and_small_tensors_are_left_alone():
    from pathlib import Path

    from recviz.training import huge_pages

    t = huge_pages.zeros((3, 1 << 20), torch.float32, torch.device("cpu"))  # 12 MB
    assert t.shape == (3, 1 << 20) and not t.any()
    assert not huge_pages.advise(torch.ones(1000))  # under two huge pages: nothing asked
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if setting.exists() and "[never]" not in setting.read_text():
        assert huge_pages.advise(t, collapse=True)
        table = nn.Embedding(1 << 16, 64, sparse=True)  # 16 MB: RowAdam advises it, same values after
        before = table.weight.detach().clone()
        RowAdam(table.parameters(), lr=0.1)
        assert torch.equal(table.weight, before)
