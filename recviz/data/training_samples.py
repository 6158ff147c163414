"""What a model trains on in one epoch, drawn with numpy in whole arrays (no Python loop per sample):
the distinct positive pairs of train and sampled negatives, re-drawn every epoch."""

from __future__ import annotations

import numpy as np

from recviz.data.sampling import SeenItems, sample_negatives
from recviz.data.split import Split, target_train
from recviz.errors import ModelError


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
