"""Judge any scorer on a split's validation or test part, with the split's own protocol.

A scorer is anything with `score(users [B], items [B, M]) -> [B, M]` and
`score_all(users [B]) -> [B, n_items]` returning numpy arrays (higher = better). Models and
baselines all are; so is a lambda wrapped in `FunctionScorer` in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from recviz.data.sampling import SeenItems
from recviz.data.split import Split
from recviz.errors import ModelError
from recviz.eval import metrics

# Rows of scores computed at once: bounds memory for full ranking on large catalogues.
_SCORE_CELLS = 1 << 23


class Scorer(Protocol):
    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray: ...
    def score_all(self, users: np.ndarray) -> np.ndarray: ...


@dataclass
class Evaluation:
    part: str  # "valid" | "test"
    protocol: str  # split.describe(), shown next to every number
    metrics: dict[str, float]
    users: np.ndarray  # evaluated users, aligned with per_user arrays
    per_user: dict[str, np.ndarray]


def evaluate(scorer: Scorer, split: Split, part: str = "test", ks=metrics.DEFAULT_KS) -> Evaluation:
    if split.protocol == "loo":
        users, per_user = _sampled(scorer, split, part, ks)
    else:
        users, per_user = _full(scorer, split, part, ks)
    return Evaluation(part, split.describe(), metrics.mean(per_user), users, per_user)


def _checked(scores, shape) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != shape:
        raise ModelError(f"scorer returned shape {scores.shape}, expected {shape}")
    if np.isnan(scores).any():
        raise ModelError("the model produced NaN scores (training diverged)",
                         fix="lower the learning rate or check the input ratings")
    return scores


def _sampled(scorer: Scorer, split: Split, part: str, ks) -> tuple[np.ndarray, dict]:
    users, held = split.held_out(part)
    items = np.concatenate([held[:, None], split.candidates(part)], axis=1)
    step = max(1, _SCORE_CELLS // items.shape[1])
    scores = np.concatenate([
        _checked(scorer.score(users[s:s + step], items[s:s + step]), items[s:s + step].shape)
        for s in range(0, len(users), step)
    ]) if len(users) else np.zeros((0, items.shape[1]), np.float32)
    return users, metrics.sampled_metrics(scores, ks)


def _full(scorer: Scorer, split: Split, part: str, ks) -> tuple[np.ndarray, dict]:
    held_users, held_items = split.held_out(part)
    order = np.lexsort((held_items, held_users))
    held_users, held_items = held_users[order], held_items[order]
    users, starts = np.unique(held_users, return_index=True)
    indptr = np.r_[starts, len(held_users)]
    top = recommend(scorer, users, split.known_before(part), max(ks), seed=split.seed)
    return users, metrics.full_ranking_metrics(top, indptr, held_items, ks)


def recommend(scorer: Scorer, users: np.ndarray, exclude: SeenItems, k: int, seed: int = 0,
              with_scores: bool = False):
    """Top-k items per user among items not in `exclude`, ties broken by a seeded permutation."""
    n_items = exclude.n_items
    tie_perm = np.random.default_rng(seed).permutation(n_items)
    step = max(1, _SCORE_CELLS // n_items)
    tops, vals = [], []
    for s in range(0, len(users), step):
        chunk = users[s:s + step]
        scores = _checked(scorer.score_all(chunk), (len(chunk), n_items))
        row, item = exclude.rows(chunk)
        scores[row, item] = -np.inf
        top = metrics.top_k(scores, k, tie_perm)
        tops.append(top)
        vals.append(np.take_along_axis(scores, top, axis=1))
    top = np.concatenate(tops) if tops else np.zeros((0, k), np.int64)
    if with_scores:
        return top, (np.concatenate(vals) if vals else np.zeros((0, k), np.float32))
    return top


class FunctionScorer:
    """Wrap `f(users [B], items [B, M]) -> scores` as a Scorer (tests, quick experiments)."""

    def __init__(self, f, n_items: int):
        self.f, self.n_items = f, n_items

    def score(self, users, items):
        return self.f(users, items)

    def score_all(self, users):
        return self.f(users, np.broadcast_to(np.arange(self.n_items), (len(users), self.n_items)))
