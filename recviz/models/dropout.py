"""Dropout for the NCF towers whose mask, on the CPU, is a hash of a seed: `Dropout` is `nn.Dropout`
(zero each value with probability p, scale the rest by 1/(1 − p)) except for where its randomness
comes from.

Why: torch's CPU dropout draws each element from its Mersenne Twister, ~6 ns an element on this
machine. NeuMF's tower (batch 256 × (128 + 64 + 32) values a step) spent ~0.35 ms a step drawing
masks — more than its matrix products. Here a step draws one seed per layer from torch's generator
(so `torch.manual_seed` still fixes every mask) and element e of the layer's output is kept when
the top 24 bits of splitmix64's output for counter e + 1 lie below (1 − p)·2²⁴: a counter-based
hash, the same numbers in torch operations (`noise`), in the compiled step of
`recviz/native/ncf.c` and in its `dropout_noise_f32` — so the autograd path, the hand-written
step and the compiled one draw the same masks from the same seed. A mask costs a few
multiplications an element, and needs no state besides its seed.

On CUDA the module is `nn.Dropout` as it is (torch's fused `native_dropout`, drawn from the CUDA
generator): there, per-element hashing in separate operations would cost more than it saves.
"""

from __future__ import annotations

import torch
from torch import nn

from recviz import native

BITS = 24  # the hash's top bits compared with (1 − p)·2^BITS (ncf.c's BITS too)
# splitmix64 (Steele, Lea & Flood 2014): the counter's step and the two multipliers, as int64 bit patterns
GOLDEN, MIX1, MIX2 = (c - (1 << 64) for c in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))


def threshold(p: float) -> int:
    """Keep an element when its hash's top `BITS` bits are below this: P(keep) = (1 − p) to 2⁻²⁴."""
    return round((1.0 - p) * (1 << BITS))


def scale(p: float) -> float:
    """A kept element's factor."""
    return 1.0 / (1.0 - p)


def draw_seeds(n: int) -> torch.Tensor:
    """n seeds (int64, CPU) from torch's default generator: one draw of n is n draws of 1."""
    return torch.empty(n, dtype=torch.int64).random_()


def _shift(z: torch.Tensor, bits: int) -> torch.Tensor:
    """A logical right shift of int64 bit patterns (torch's `>>` is arithmetic)."""
    return (z >> bits) & ((1 << (64 - bits)) - 1)


def hash_keep(seed: int, n: int, p: float) -> torch.Tensor:
    """Whether each of elements 0..n−1 is kept: splitmix64 of counter e + 1 from `seed`, in int64
    torch operations (multiplication wraps, as uint64's does in C)."""
    z = torch.arange(1, n + 1, dtype=torch.int64).mul_(GOLDEN).add_(seed)
    z = (z ^ _shift(z, 30)).mul_(MIX1)
    z = (z ^ _shift(z, 27)).mul_(MIX2)
    return _shift(z ^ _shift(z, 31), 64 - BITS) < threshold(p)


def noise(seed: int, shape: tuple[int, ...] | torch.Size, p: float) -> torch.Tensor:
    """Dropout's factors for a tensor of `shape` (float32, CPU): 1/(1 − p) where kept, 0 where
    dropped — compiled where a C compiler is at hand, else the same numbers by torch operations."""
    out = torch.empty(shape, dtype=torch.float32)
    kernel = native.kernel("dropout_noise_f32")
    if kernel is None or kernel(seed, out.numel(), threshold(p), scale(p), out.data_ptr()) < 0:
        out = hash_keep(seed, out.numel(), p).view(shape).to(torch.float32).mul_(scale(p))
    return out


class Dropout(nn.Dropout):
    """`nn.Dropout` with the CPU mask hashed from one seed per call (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return super().forward(x)
        seed = int(draw_seeds(1)[0])
        return x * noise(seed, x.shape, self.p).to(x.dtype)
