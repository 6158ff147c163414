"""What the Recommendations page reads of one run, built once per run so that each rerun costs one
user's rows: the users' raw ids sorted for the search, every user's rows grouped with their part of
the split, every item's title and the users judged on test. `benchmarks/scale.py --phases topn`
times this very object, so what it reports is what the page pays.

Per user (`RunView` methods): the history a page at a time and the held-out rows
(`analysis.history` over the row index), the held-out and train items and rows (the train rows
are what "why these items" reads), and the top-N list — the stored one,
or, for a user whose list the run did not store, made now from the run's model with that user's
known items read from the row index (`history.known_items`), never a mask over the whole log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recviz.analysis import history
from recviz.analysis.dataset import item_titles
from recviz.analysis.lookup import IdIndex
from recviz.experiments import topn


@dataclass(frozen=True)
class RunView:
    split: object  # recviz.data.split.Split, drawn on `split.data`
    users: IdIndex  # raw user ids, for the search
    rows: history.RowIndex  # every user's rows, with their parts
    titles: np.ndarray  # a title per internal item id
    test_users: np.ndarray  # the users judged on test (sorted internal ids)

    @classmethod
    def build(cls, split) -> RunView:
        """Index `split`'s data once: O(rows log rows) for the row grouping, O(users + items) else."""
        data = split.data
        held_users, judged = split.held_out("test")[0], split.evaluated("test")
        test_users = np.unique(held_users if judged is None else held_users[judged])
        return cls(split, IdIndex.build(data.user_ids), history.RowIndex.build(data, split), item_titles(data),
                   test_users)

    @property
    def data(self):
        return self.split.data

    def n_rows(self, user: int) -> int:
        """How many rows the user has."""
        return int(self.rows.starts[user + 1] - self.rows.starts[user])

    def history_page(self, user: int, page: int, page_size: int = history.PAGE_SIZE):
        """One page of the user's history, with its part of the split (`history.history_page`)."""
        return history.history_page(self.data, user, self.split, page, page_size, index=self.rows)

    def held(self, user: int) -> pd.DataFrame:
        """The user's rows held out for test (`history.part_history`)."""
        return history.part_history(self.data, user, self.split, "test", index=self.rows)

    def held_items(self, user: int) -> np.ndarray:
        """The items of the user's test rows (internal ids): `split.held_out("test")`'s of this user."""
        return history.part_items(self.data, user, self.split, "test", index=self.rows)

    def train_rows(self, user: int) -> np.ndarray:
        """The user's train rows (row indices into `data`), oldest first."""
        return history.part_rows(self.data, user, self.split, "train", index=self.rows)

    def train_items(self, user: int) -> np.ndarray:
        """The items of the user's train rows (internal ids)."""
        return self.data.item[self.train_rows(user)]

    def user_list(self, stored: dict, user: int, seed: int, model_of: Callable[[], object]):
        """The user's (items [N], scores [N]): the stored row of `stored` (`artifacts.load_topn`), or
        made now for that user alone — `recommend` with the run's `seed` over the items the user
        had in neither train nor validation, exactly the list an unbounded save would have stored.
        `model_of()` gives the run's model; it is called only when a list is made."""
        return topn.stored_or_made(stored, user, lambda: topn.lists(
            model_of(), self.split, [user], stored["items"].shape[1], seed,
            known=history.known_items(self.data, user, self.rows)))
