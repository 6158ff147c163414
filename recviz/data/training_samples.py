"""What a model trains on in one epoch, drawn with numpy in whole arrays (no Python loop per sample):
the distinct positive pairs of train and sampled negatives, re-drawn every epoch.

An epoch is drawn as an `EpochDraw`: its samples are *units* (a positive and the negatives drawn
for it, `rows_per_unit` rows), and it can be drawn whole (`draw(rng)`, what every epoch that fits
one chunk gets) or for a subset of its units (`draw(rng, units)`), so that the training loop builds
a large epoch chunk by chunk (`recviz.training.chunks`) and never holds all its rows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from recviz.data.sampling import SeenItems, sample_negatives
from recviz.data.split import Split, target_train
from recviz.errors import ModelError


@dataclass(frozen=True)
class EpochDraw:
    """One epoch's samples as a model declares them: `units` positives, each bringing
    `rows_per_unit` rows (1 + neg_ratio pointwise, 1 pairwise); `fn(rng, units)` returns equally
    long arrays by name — for every unit in the model's own layout when `units` is None, else for
    those units only (an int array of unit numbers), in the same layout. Calling the draw with only
    `rng` is the whole epoch, exactly as before epochs were chunked."""

    units: int
    rows_per_unit: int
    fn: Callable[[np.random.Generator, "np.ndarray | None"], dict[str, np.ndarray]]

    def __call__(self, rng: np.random.Generator, units: np.ndarray | None = None) -> dict[str, np.ndarray]:
        return self.fn(rng, units)

    @property
    def samples(self) -> int:
        return self.units * self.rows_per_unit


def pair_draw(seen: "SeenItems", neg_ratio: int = 4, pairwise: bool = False) -> EpochDraw:
    """`epoch_samples` over the distinct pairs of `seen` (in key order, as `train_positives` returns
    them) as an `EpochDraw`: unit k is pair k and its negatives. The users are recomputed from the
    keys per draw instead of being held beside them (8 bytes a positive for the whole run)."""
    def fn(rng: np.random.Generator, units: np.ndarray | None) -> dict[str, np.ndarray]:
        keys, items = (seen.keys, seen.items) if units is None else (seen.keys[units], seen.items[units])
        return epoch_samples(keys // seen.n_items, items, seen, rng, neg_ratio=neg_ratio, pairwise=pairwise)
    return EpochDraw(len(seen.keys), 1 if pairwise else 1 + neg_ratio, fn)


def train_positives(split: Split) -> tuple[np.ndarray, np.ndarray, SeenItems]:
    """The distinct (user, item) pairs of train — a pair seen under several behaviours or ratings is
    one positive — and the index used to reject negatives. Negatives are "not in train": validation
    and test items may be drawn as negatives, exactly as for a real user whose future is unknown.
    With a target behaviour, only its pairs (`target_train`)."""
    train = target_train(split)
    seen = SeenItems(train.user, train.item, train.n_users, train.n_items)
    full = np.flatnonzero(seen.count(np.arange(train.n_users)) >= train.n_items)
    if len(full):
        raise ModelError(f"user {train.user_ids[full[0]]} interacted with every item in train, so no "
                         "negative item can be sampled for them",
                         fix="filter such users out of the data, or add items")
    return seen.keys // train.n_items, seen.items, seen


def epoch_samples(users: np.ndarray, items: np.ndarray, seen: SeenItems, rng: np.random.Generator,
                  neg_ratio: int = 4, pairwise: bool = False) -> dict[str, np.ndarray]:
    """One epoch's training samples, re-drawn every epoch (He et al. 2017 §3.1.1).

    pointwise: every positive (label 1) plus `neg_ratio` uniformly sampled unobserved items per
      positive (label 0) → {"user", "item", "label"} of length P·(1 + neg_ratio);
    pairwise (BPR): each positive paired with one unobserved item → {"user", "item", "neg"}, length P.
    Negatives come from `sample_negatives` (rejection rounds over whole arrays, no per-sample loop).
    """
    if pairwise:
        return {"user": users, "item": items, "neg": sample_negatives(users, seen, rng)}
    neg_users = np.repeat(users, neg_ratio)
    neg_items = sample_negatives(neg_users, seen, rng)
    labels = np.zeros(len(users) + len(neg_users), np.float32)
    labels[:len(users)] = 1.0
    return {"user": np.concatenate([users, neg_users]), "item": np.concatenate([items, neg_items]),
            "label": labels}
