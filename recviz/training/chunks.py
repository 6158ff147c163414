"""How the training loop cuts an epoch's samples into chunks, so that a large epoch is never held
whole: at 100M positives and `neg_ratio` 4 an epoch is 500M samples, ~10 GB as the int64/float32
arrays the models train on, twice over once shuffled. A chunk is drawn, moved to the device, shuffled
there and trained on, then dropped before the next one is drawn.

The order of an epoch of more than `EPOCH_CHUNK` samples:
1. one seeded permutation of the epoch's units (a positive with the negatives drawn for it; see
   `recviz.data.training_samples.EpochDraw`), as int32 where it fits (4 bytes a positive);
2. consecutive slices of that permutation are the chunks: each chunk's units are drawn (their
   negatives sampled then, from the same seeded generator as a whole epoch's; in unit order, see
   `as_units`), and the chunk's rows are shuffled within the chunk, in blocks of `shuffle_block` (DMF keeps a positive with its
   negatives) as a whole epoch is.

So every positive is visited exactly once an epoch, in a uniformly random chunk; within a chunk the
order is uniform. What differs from one shuffle of the whole epoch: a positive's negatives fall in
the same chunk as it (a chunk is thousands of batches, so a batch still mixes samples of thousands of
positives). Every chunk but the last holds a whole number of batches, so the batches are the sizes
a whole epoch would have: all full but the epoch's last.

An epoch of at most `EPOCH_CHUNK` samples (every ml-100k run: ~0.5M samples with neg_ratio 4; not
ml-1m's 5M) is one chunk: drawn whole and shuffled once, exactly as before epochs were chunked, so
its samples and their order are the same bit for bit.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

# Samples built and held at once: 4M samples (~80 MB as int64 user and item plus a float32 label,
# about twice that while a chunk is drawn and shuffled; ~20 s of GMF training at 200k samples/s, of
# which drawing the chunk is ~1 s). An epoch of at most this many is drawn whole.
EPOCH_CHUNK = 1 << 22


def chunk_units(rows_per_unit: int, batch_size: int, chunk: int = EPOCH_CHUNK) -> int:
    """Units per chunk: as many as fit in `chunk` samples, rounded down to a whole number of batches
    (at least one batch's worth)."""
    step = batch_size // math.gcd(batch_size, rows_per_unit)  # units whose rows fill whole batches
    return max(step, chunk // rows_per_unit // step * step)


def unit_order(units: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded permutation of the epoch's units (int32 when it fits: 4 bytes a positive)."""
    dtype = torch.int32 if units < 2**31 else torch.int64
    return torch.randperm(units, generator=generator, dtype=dtype)


def chunk_slices(units: int, per_chunk: int) -> Iterator[slice]:
    """Consecutive slices of the unit order, one per chunk."""
    for lo in range(0, units, per_chunk):
        yield slice(lo, min(units, lo + per_chunk))


def block_order(n: int, block: int, generator: torch.Generator) -> torch.Tensor:
    """A seeded shuffle of `n` rows in blocks of `block` consecutive rows (which move together)."""
    return (torch.randperm(n // block, generator=generator)[:, None] * block + torch.arange(block)).reshape(-1)


def as_units(index: torch.Tensor) -> np.ndarray:
    """A slice of the unit order as the int64 numpy array a draw indexes with, sorted: the chunk's
    shuffle decides the order its samples are trained in, and drawn in unit order the negatives'
    membership tests (`SeenItems.contains`, a binary search per sample) walk the index of seen
    pairs in order — 4.6× less CPU for a 4M-sample chunk of the 10M-row log than in random order."""
    return np.sort(index.numpy().astype(np.int64))
