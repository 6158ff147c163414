"""What every model and baseline is to the rest of RecViz: something that learns from a split's
train part and scores (user, item) pairs."""

from __future__ import annotations

import numpy as np

from recviz.data.split import Split


class Recommender:
    """Subclasses implement `fit` and either `score_all` or `score` (the other is derived)."""

    name = "base"

    def fit(self, split: Split) -> None:
        """Learn from `split.train` only: nothing held out may reach a model."""
        raise NotImplementedError

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user: float32 [len(users), n_items]."""
        raise NotImplementedError

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of items [B, M] for users [B]."""
        return np.take_along_axis(self.score_all(users), items, axis=1)
