"""A GMF training step on embedding tables of a chosen size: the row-sparse (lazy Adam) update
compiled (`recviz/native/row_adam.c`) against its torch operations, and against dense Adam on
ml-100k-sized tables — in one process, interleaved.

    python benchmarks/row_update.py                               # 1M users × 3.75M items (100M rows)
    python benchmarks/row_update.py --users 100000 --items 388000 # the 10M-row log's tables

The step is the loop's (`recviz.models.ncf_step.NCFStep` + `recviz.training.optim`), batch 1024,
GMF's emb 64, on one torch thread. Batches are drawn once, shaped as GMF's epoch with 4 negatives
a positive: users uniform, 1 sample in 5 a positive with a long-tailed item (Zipf 1.2), the
others negatives with an item uniform over all items (cold rows, as in the real loop). Variants:
- `small-dense`: 943 × 1,682 tables (ml-100k's), dense Adam: the step ml-100k trains with;
- `small-compiled`: the same small tables row-sparse, lazy Adam compiled: the same code as
  `compiled` with every row in cache, so `compiled` − `small-compiled` is what the tables' size
  costs (cache, TLB and DRAM misses), not the code;
- `compiled`: the large tables, row-sparse, lazy Adam compiled;
- `torch-ops`: the same, lazy Adam as torch operations (`RowAdam(compiled=False)`).
A round runs `--block` steps of each variant, in an order rotating from round to round; the report
is the median over rounds of ms per step (wall and this thread's CPU), and each variant's ratio to
`small-dense`. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's recviz

from recviz.models.ncf_step import NCFStep  # noqa: E402
from recviz.training.optim import Adam, RowAdam  # noqa: E402

BATCH, DIM = 1024, 64


class Variant:
    def __init__(self, users: int, items: int, sparse: bool, compiled: bool = True):
        torch.manual_seed(0)
        self.user, self.item = nn.Embedding(users, DIM, sparse=sparse), nn.Embedding(items, DIM, sparse=sparse)
        self.out = nn.Linear(DIM, 1)
        net = nn.ModuleDict({"user": self.user, "item": self.item, "out": self.out})
        self.step = NCFStep(net, self.user, self.item, DIM, 0, None, self.out)
        tables = [self.user.weight, self.item.weight]
        self.dense = Adam(list(self.out.parameters()) + ([] if sparse else tables), lr=1e-3)
        self.rows = RowAdam(tables, lr=1e-3, compiled=compiled) if sparse else None
        if sparse and compiled and self.rows.kernel is None:
            raise SystemExit("no C compiler: the compiled update cannot be built here")
        self.n_users, self.n_items = users, items

    def __call__(self, batch: dict) -> None:
        self.step(batch)
        self.dense.step()
        if self.rows is not None:
            self.rows.step()


def batches(n: int, users: int, items: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        positive = rng.random(BATCH) < 0.2
        item = np.where(positive, (rng.zipf(1.2, BATCH) - 1) % items, rng.integers(0, items, BATCH))
        out.append({"user": torch.from_numpy(rng.integers(0, users, BATCH)), "item": torch.from_numpy(item),
                    "label": torch.from_numpy(positive.astype(np.float32))})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=3_750_000)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--block", type=int, default=50)
    args = p.parse_args()
    torch.set_num_threads(1)
    variants = {"small-dense": Variant(943, 1682, sparse=False),
                "small-compiled": Variant(943, 1682, sparse=True),
                "compiled": Variant(args.users, args.items, sparse=True),
                "torch-ops": Variant(args.users, args.items, sparse=True, compiled=False)}
    data = {name: batches(args.block, v.n_users, v.n_items, seed=1) for name, v in variants.items()}
    for name, v in variants.items():  # warm-up: first touches, the bias tables
        for b in data[name]:
            v(b)
    wall: dict[str, list[float]] = {n: [] for n in variants}
    cpu: dict[str, list[float]] = {n: [] for n in variants}
    names = list(variants)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t, c = time.perf_counter(), time.thread_time()
            for b in data[name]:
                variants[name](b)
            wall[name].append((time.perf_counter() - t) / args.block * 1e3)
            cpu[name].append((time.thread_time() - c) / args.block * 1e3)
    med = {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in names}
    print(f"GMF step, batch {BATCH}, emb {DIM}, 1 thread; large tables {args.users:,} × {args.items:,}; "
          f"median of {args.rounds} rounds of {args.block} steps")
    for n in names:
        print(f"{n:14s} {med[n][0]:7.3f} ms wall {med[n][1]:7.3f} ms CPU  "
              f"{med[n][0] / med['small-dense'][0]:5.2f}× small-dense")
    print(json.dumps({"users": args.users, "items": args.items, "batch": BATCH,
                      "ms_per_step": {n: round(med[n][0], 4) for n in names},
                      "cpu_ms_per_step": {n: round(med[n][1], 4) for n in names}}))


if __name__ == "__main__":
    main()
