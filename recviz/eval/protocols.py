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
from recviz.eval.topk import TopK

# Scores (users × items cells) computed at once, everywhere scores are made in blocks of users
# (here and in `Recommender.score`): 16 MB of float32, so a block with its top-K work stays
# ~100 MB whatever the numbers of users and items.
SCORE_CELLS = 1 << 22


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
    if scores.size and np.isnan(scores.max()):  # max is NaN where any is: no mask of the scores
        raise ModelError("the model produced NaN scores (training diverged)",
                         fix="lower the learning rate or check the input ratings")
    return scores


def _sampled(scorer: Scorer, split: Split, part: str, ks) -> tuple[np.ndarray, dict]:
    """Rank each held-out item among its candidates, a block of users at a time: only the
    per-user metrics are kept."""
    users, held = split.held_out(part)
    cands, keep = split.candidates(part), split.evaluated(part)
    if keep is not None:  # a sample of the users (`eval_users`)
        users, held, cands = users[keep], held[keep], cands[keep]
    items = np.concatenate([held[:, None], cands], axis=1)
    step = max(1, SCORE_CELLS // items.shape[1])
    blocks = [metrics.sampled_metrics(_checked(scorer.score(users[s:s + step], items[s:s + step]),
                                               items[s:s + step].shape), ks)
              for s in range(0, len(users), step)]
    if not blocks:
        return users, metrics.sampled_metrics(np.zeros((0, items.shape[1]), np.float32), ks)
    return users, {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}


def _full(scorer: Scorer, split: Split, part: str, ks) -> tuple[np.ndarray, dict]:
    held_users, held_items = split.held_out(part)
    keep = split.evaluated(part)
    if keep is not None:  # a sample of the users (`eval_users`)
        held_users, held_items = held_users[keep], held_items[keep]
    order = np.lexsort((held_items, held_users))
    held_users, held_items = held_users[order], held_items[order]
    users, starts = np.unique(held_users, return_index=True)
    indptr = np.r_[starts, len(held_users)]
    top = recommend(scorer, users, split.known_before(part), max(ks), seed=split.seed)
    return users, metrics.full_ranking_metrics(top, indptr, held_items, ks)


def recommend(scorer: Scorer, users: np.ndarray, exclude: SeenItems, k: int, seed: int = 0,
              with_scores: bool = False):
    """Top-k items per user among items not in `exclude`, ties broken by a seeded permutation.

    Users are scored in blocks of at most SCORE_CELLS scores and only each block's top-k is kept,
    so memory is bounded whatever the numbers of users and items. The tie order is made once per
    (seed, n_items) and the ranking keys in per-thread scratch (`topk`), and excluded items are
    ranked last in those keys, never written into the scores: a call for one user allocates its
    scorer's score row and O(k), not the catalogue's permutation and keys again."""
    n_items = exclude.n_items
    step = max(1, SCORE_CELLS // max(1, n_items))
    top_k = TopK.seeded(seed, n_items, k)
    k = top_k.k
    top = np.zeros((len(users), k), np.int64)
    vals = np.zeros((len(users), k), np.float32)
    for s in range(0, len(users), step):
        chunk = users[s:s + step]
        top[s:s + step], vals[s:s + step] = top_k.ranked(_checked(scorer.score_all(chunk), (len(chunk), n_items)),
                                                         *exclude.rows(chunk))
    return (top, vals) if with_scores else top


def _top_k(scores: np.ndarray, k: int, tie_rank: np.ndarray) -> np.ndarray:
    """`metrics.top_k(scores, k, tie_perm)` (best score first, ties in permutation order, where
    tie_rank[tie_perm] = 0, 1, ...) in one selection pass a row instead of a full sort (`TopK`)."""
    return TopK(tie_rank, k)(scores)


class FunctionScorer:
    """Wrap `f(users [B], items [B, M]) -> scores` as a Scorer (tests, quick experiments)."""

    def __init__(self, f, n_items: int):
        self.f, self.n_items = f, n_items

    def score(self, users, items):
        return self.f(users, items)

    def score_all(self, users):
        return self.f(users, np.broadcast_to(np.arange(self.n_items), (len(users), self.n_items)))
