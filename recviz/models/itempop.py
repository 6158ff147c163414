"""ItemPop: rank items by how many users interacted with them in train — the non-personalised
yardstick of the NCF and DMF papers."""

from __future__ import annotations

import numpy as np

from recviz.data.split import Split, target_train
from recviz.models.base import Recommender
from recviz.models.spec import ModelSpec

SPEC = ModelSpec("itempop", "ItemPop", "baseline of He et al. 2017 (NCF) and Xue et al. 2017 (DMF)",
                 "recviz.models.itempop:ItemPop", summary="items ranked by how many distinct users have them in train")


class ItemPop(Recommender):
    spec = SPEC

    def fit(self, split: Split) -> None:
        train = target_train(split)  # the target behaviour's rows when there is one
        pairs = np.unique(train.user.astype(np.int64) * train.n_items + train.item)
        # distinct users per item: a user viewing an item ten times counts once
        self.popularity = np.bincount(pairs % train.n_items, minlength=train.n_items).astype(np.float32)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity, (len(users), len(self.popularity))).copy()

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.popularity[items]

    def get_state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        self.popularity = np.asarray(state["popularity"], dtype=np.float32)
