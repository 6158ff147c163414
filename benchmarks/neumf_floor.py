"""The floor of a NeuMF epoch on ml-100k for this machine, in fp32: what the tower's matrix products
and Adam's dense step cost alone, before any gather, elementwise pass, dropout mask or loss.

    python benchmarks/neumf_floor.py            # emb 64, MLP 128→128→64→32 (the peer benchmark's NeuMF)

Per step at batch 256 and 1024: the tower's products (forward 3; backward 6: each layer's weight
gradient and its input gradient, the first layer's feeding the embeddings) on fixed inputs, into
outputs allocated once (as the compiled step's scratch: a fresh 512 KB output is fresh pages, and
at batch 1024 that alone made the products 1.5× slower), and `recviz.training.optim.Adam.step` over every weight of the network
(NeuMFNet: both tables and the tower), each the median of 30 blocks of 20 steps; times the epoch's
steps (ml-100k leave-one-out: 98,114 training positives × (1 + 4 negatives) = 490,570 samples).
Two threads, as the peer benchmark. Run it alone: it prints numbers, it asserts nothing.
"""

from __future__ import annotations

import statistics
import time

import torch

from recviz.models.ncf import NeuMFNet
from recviz.training.optim import Adam

SAMPLES = 490_570
LAYERS = (128, 128, 64, 32)


def median_seconds(f, rounds: int = 30, block: int = 20) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(block):
            f()
        times.append((time.perf_counter() - start) / block)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(2)
    net = NeuMFNet(943, 1682, 64, LAYERS, 0.0)
    params = list(net.parameters())
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    opt = Adam(params, lr=0.001)
    weights = [torch.randn(o, i) for i, o in zip(LAYERS, LAYERS[1:])]
    for batch in (256, 1024):
        xs = [torch.randn(batch, w) for w in LAYERS]  # each layer's input, and the output last
        ds = [torch.randn(batch, w) for w in LAYERS]  # ∂loss/∂ each of them
        dws = [torch.empty_like(w) for w in weights]

        def products():
            for k, w in enumerate(weights):
                torch.mm(xs[k], w.t(), out=xs[k + 1])
            for k in range(len(weights) - 1, -1, -1):
                torch.mm(ds[k + 1].t(), xs[k], out=dws[k])
                torch.mm(ds[k + 1], weights[k], out=ds[k])

        steps = -(-SAMPLES // batch)
        mm, adam = median_seconds(products), median_seconds(opt.step)
        print(f"batch {batch}: {steps} steps; tower matmuls {mm * 1e3:.3f} ms/step = {mm * steps:.2f} s/epoch; "
              f"Adam (dense, {sum(p.numel() for p in params):,} weights) {adam * 1e3:.3f} ms/step = "
              f"{adam * steps:.2f} s/epoch; sum {(mm + adam) * steps:.2f} s/epoch")


if __name__ == "__main__":
    main()
