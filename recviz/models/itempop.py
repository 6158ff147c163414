"""ItemPop: rank items by how many users interacted with them in train — the non-personalised
yardstick of the NCF and DMF papers."""

from __future__ import annotations

import numpy as np

from recviz.data.arrays import count_distinct
from recviz.data.split import Split, target_rows
from recviz.models.base import Recommender
from recviz.models.itempop_spec import SPEC


class ItemPop(Recommender):
    spec = SPEC

    def fit(self, split: Split) -> None:
        rows = target_rows(split)  # the target behaviour's train rows when there is one
        data = split.data
        # distinct users per item: a user viewing an item ten times counts once. Only the two
        # columns are gathered, and counted by sorting (numpy's hashed np.unique is ~20× slower on
        # millions of pairs).
        self.popularity = count_distinct(data.item[rows], data.user[rows], data.n_items,
                                         data.n_users).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        """Every user's row is the popularity: a read-only view, no copy (a page's one-user list
        at 4M items would otherwise back 16 MB of fresh memory per rerun)."""
        return np.broadcast_to(self.popularity, (len(users), len(self.popularity)))

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.popularity[items]

    def get_state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        self.popularity = np.asarray(state["popularity"], dtype=np.float32)
