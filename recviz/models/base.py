"""What every model and baseline is to the rest of RecViz: something built from its declared
options, that learns from a split's train part, scores (user, item) pairs, and can be saved and
restored as plain arrays."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

import numpy as np

from recviz.data.split import Split
from recviz.eval.protocols import SCORE_CELLS
from recviz.options import DEVICE, SEED, THREADS

# Called after each epoch with that epoch's report (a dict: epoch, train_loss, valid metrics,
# seconds, samples_per_second, ...). Returns nothing.
EpochCallback = Callable[[dict], None]
# Polled between batches/epochs; True means "stop now" (a cancelled run).
StopCheck = Callable[[], bool]


class Recommender:
    """Subclasses set `name` (the registry's) and implement `fit`, `score_all` (or `score`),
    `get_state` and `set_state`; the rest has working defaults."""

    name = "base"
    iterative = False  # trained in epochs (has learning curves) or fitted in one pass
    best_epoch: int | None = None  # set by fit: the epoch whose weights were kept

    def __init__(self, *, seed: int = SEED.default, device: str = DEVICE.default,
                 threads: int = THREADS.default, **options):
        """`options` are this model's declared options (`recviz.models.registry`): missing ones take
        their declared defaults; an unknown name or a value out of range is a ModelError naming it."""
        from recviz.errors import ModelError
        from recviz.models import registry

        self.opts = SimpleNamespace(**registry.get(self.name).resolve(options))
        self.seed = SEED.parse(seed, self.name, ModelError)
        self.device_name = DEVICE.parse(device, self.name, ModelError)
        self.threads = THREADS.parse(threads, self.name, ModelError)

    def fit(self, split: Split, on_epoch: EpochCallback | None = None,
            should_stop: StopCheck | None = None) -> list[dict]:
        """Learn from `split.train` only (nothing held out may reach a model); validation may be
        used for early stopping. Returns the per-epoch history (empty for one-pass baselines)."""
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 [len(users), n_items]."""
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of items [B, M] for users [B]. This default goes through `score_all` in blocks
        of users of at most SCORE_CELLS scores (the first block, one user, gives the catalogue's
        size), so no B makes a B × n_items array; models that can score pairs directly override it."""
        users, items = np.asarray(users), np.asarray(items)
        parts, start, step = [], 0, 1
        while start < len(users):
            block = self.score_all(users[start:start + step])
            parts.append(np.take_along_axis(block, items[start:start + step], axis=1))
            start += step
            step = max(1, SCORE_CELLS // max(1, block.shape[1]))
        return np.concatenate(parts) if parts else np.zeros(items.shape, np.float32)

    def item_embeddings(self) -> np.ndarray | None:
        """One vector per item ([n_items, d]) for the embedding map, or None for models that
        learn none (ItemPop, ItemKNN)."""
        return None

    def get_state(self) -> dict[str, np.ndarray]:
        """Everything needed to score again, as named arrays (saved without pickle)."""
        raise NotImplementedError

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        """Restore from `get_state()`'s arrays; the model was built with the same options."""
        raise NotImplementedError
