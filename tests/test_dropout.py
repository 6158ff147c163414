"""`recviz.models.dropout`: the hashed dropout masks of the NCF towers — the compiled mask equal to
the torch operations' bit for bit, the keep rate 1 − p, a mask fixed by its seed and the seeds by
torch's generator, and the module acting as `nn.Dropout` does."""

import pytest
import torch

from recviz import native
from recviz.models import dropout
from recviz.models.dropout import Dropout


@pytest.mark.skipif(native.kernel("dropout_noise_f32") is None, reason="no C compiler here")
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_compiled_mask_is_the_torch_operations_mask(p, monkeypatch):
    for seed in (0, 1, 12345, 2**62 + 7, 2**63 - 1):
        compiled = dropout.noise(seed, (301, 7), p)
        monkeypatch.setenv(native.DISABLE, "0")
        by_torch = dropout.noise(seed, (301, 7), p)
        monkeypatch.delenv(native.DISABLE)
        assert compiled.dtype == by_torch.dtype == torch.float32 and torch.equal(compiled, by_torch)


def test_splitmix64_in_torch_operations_is_the_reference():
    """The first outputs of splitmix64 seeded with 1234567 (the C reference, uint64 arithmetic,
    computed here in Python integers), kept or not by their top 24 bits."""
    def splitmix(seed, e):
        mask = (1 << 64) - 1
        z = (seed + (e + 1) * 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)
    want = [splitmix(1234567, e) >> 40 < dropout.threshold(0.5) for e in range(64)]
    assert splitmix(1234567, 0) == 6457827717110365317  # splitmix64's published first output for seed 1234567
    assert dropout.hash_keep(1234567, 64, 0.5).tolist() == want


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_the_keep_rate_is_one_minus_p_and_kept_values_are_scaled(p):
    n = 400_000
    keep = dropout.hash_keep(99, n, p)
    assert abs(float(keep.double().mean()) - (1 - p)) < 4 * ((p * (1 - p) / n) ** 0.5)
    noise = dropout.noise(99, (n,), p)
    assert noise.unique().tolist() == [0.0, torch.tensor(1 / (1 - p), dtype=torch.float32).item()]
    assert torch.equal(noise > 0, keep)
    other = dropout.hash_keep(100, n, p)  # another seed: an independent mask
    assert abs(float((keep & other).double().mean()) - (1 - p) ** 2) < 0.01


def test_seeds_come_from_torchs_generator_one_draw_of_n_being_n_draws_of_one():
    torch.manual_seed(3)
    together = dropout.draw_seeds(4).tolist()
    torch.manual_seed(3)
    assert [int(dropout.draw_seeds(1)[0]) for _ in range(4)] == together
    assert len(set(together)) == 4 and all(0 <= s < 2**63 for s in together)


def test_the_module_drops_as_nn_dropout_does():
    x = torch.randn(64, 33, requires_grad=True)
    drop = Dropout(0.25).train()
    torch.manual_seed(0)
    y = drop(x)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)  # the seed fixes the mask
    torch.manual_seed(0)
    seed = int(dropout.draw_seeds(1)[0])
    noise = dropout.noise(seed, x.shape, 0.25)
    assert torch.equal(y, x * noise) and 0.6 < float((noise > 0).float().mean()) < 0.9
    y.sum().backward()
    assert torch.equal(x.grad, noise)  # dropout's gradient: the same factors
    assert torch.equal(drop.eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert isinstance(drop, torch.nn.Dropout) and drop.p == 0.25
