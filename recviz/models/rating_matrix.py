"""Train's rating matrix as a model input, shared by DMF and EINMF.

Both models read a user's *row* of ratings and an item's *column*: DMF as its towers' input (Xue et
al. 2017, eq. 2), EINMF as its explicit embeddings. The matrix is built from `split.train` only, so
no validation or test rating can reach a model through it; a pair rated several times in train
counts once, with its latest rating (by timestamp, then file order).

It is stored in CSR both ways (indptr / ids / ratings per user and per item) as module *buffers*
(`INPUTS`): `get_state` holds them, so a saved model scores again without the split. A row is
never made dense: `row_bags` gathers the rows asked for as bags for `nn.EmbeddingBag(mode="sum",
per_sample_weights=...)`, which computes Y_u*·W as a rating-weighted sum of W's rows.
"""

from __future__ import annotations

import numpy as np
import torch

from recviz.data.sampling import SeenItems
from recviz.data.split import Split
from recviz.data.training_samples import EpochDraw, epoch_samples, train_positives
from recviz.errors import ModelError

INPUTS = ("user_ptr", "user_idx", "user_val", "item_ptr", "item_idx", "item_val")


# ---- ratings of the train pairs ----------------------------------------------------------------
def train_ratings(split: Split, model: str) -> tuple[np.ndarray, np.ndarray, SeenItems, np.ndarray]:
    """`train_positives` plus each positive pair's rating (its latest train row's), float32."""
    users, items, seen = train_positives(split)
    train = split.train
    if train.rating is None:
        raise ModelError(f"{model} needs ratings, and {train.name or 'this dataset'} has no rating column",
                         fix="choose a dataset with ratings, or an implicit-feedback model (neumf, bpr)")
    r = np.asarray(train.rating, dtype=np.float32)
    if len(r) and not (np.isfinite(r).all() and r.min() > 0):
        raise ModelError(f"{model} needs positive ratings (0 means 'unknown' in its rating matrix); "
                         f"train has ratings from {float(np.nanmin(r))} to {float(np.nanmax(r))}",
                         fix="shift the ratings to be positive, or choose an implicit-feedback model")
    keys = train.user.astype(np.int64) * train.n_items + train.item
    rows = np.flatnonzero(np.isin(keys, seen.keys))  # the rows of the positives (target behaviour)
    time = train.timestamp[rows] if train.timestamp is not None else np.zeros(len(rows), np.int64)
    order = rows[np.lexsort((rows, time, keys[rows]))]  # by pair, then time, then file order
    last = np.r_[keys[order][1:] != keys[order][:-1], True] if len(order) else np.zeros(0, bool)
    assert np.array_equal(keys[order][last], seen.keys)  # the same distinct pairs, same order
    return users, items, seen, r[order][last]


def rating_sampler(split: Split, neg_ratio: int, model: str) -> EpochDraw:
    """Per epoch: positives + `neg_ratio` fresh negatives (`epoch_samples`) and "target", the
    explicit target R_ui / max(train R) for positives and 0 for negatives. Unit k: positive k."""
    users, items, seen, ratings = train_ratings(split, model)
    scaled = ratings / ratings.max() if len(ratings) else ratings

    def draw(rng: np.random.Generator, units: np.ndarray | None) -> dict[str, np.ndarray]:
        u, i, r = (users, items, scaled) if units is None else (users[units], items[units], scaled[units])
        sample = epoch_samples(u, i, seen, rng, neg_ratio=neg_ratio)
        target = np.zeros_like(sample["label"])
        target[:len(u)] = r  # epoch_samples puts the positives first, in this order
        sample["target"] = target
        return sample
    return EpochDraw(len(users), 1 + neg_ratio, draw)


def rating_matrix(split: Split, model: str = "DMF") -> dict[str, np.ndarray]:
    """Train's Y in CSR by user and by item: {user,item}_{ptr,idx,val} (the `INPUTS` buffers)."""
    users, items, _, ratings = train_ratings(split, model)
    n_users, n_items = split.data.n_users, split.data.n_items
    by_item = np.lexsort((users, items))
    return {"user_ptr": np.searchsorted(users, np.arange(n_users + 1)), "user_idx": items,
            "user_val": ratings,
            "item_ptr": np.searchsorted(items[by_item], np.arange(n_items + 1)),
            "item_idx": users[by_item], "item_val": ratings[by_item]}


# ---- the matrix inside a module ----------------------------------------------------------------
def register_inputs(module: torch.nn.Module, inputs: dict[str, np.ndarray]) -> None:
    for name in INPUTS:
        dtype = torch.float32 if name.endswith("_val") else torch.int64
        module.register_buffer(name, torch.as_tensor(np.asarray(inputs[name]), dtype=dtype))


def row_bags(module: torch.nn.Module, side: str, rows: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rated ids, their ratings, bag offsets and bag lengths of these users' rows (side="user")
    or items' columns (side="item"), laid out for `nn.EmbeddingBag`."""
    ptr, idx, val = (getattr(module, f"{side}_{k}") for k in ("ptr", "idx", "val"))
    start = ptr[rows]
    length = ptr[rows + 1] - start
    offsets = torch.cumsum(length, 0) - length
    total = int(length.sum())  # one sync per call: the size of the gathered bags
    pos = torch.arange(total, device=rows.device) + torch.repeat_interleave(
        start - offsets, length, output_size=total)
    return idx[pos], val[pos], offsets, length


class RatingMatrixInput:
    """Mixin for a `TorchRecommender` whose module holds train's rating matrix: `begin` builds it
    from the split, `set_state` takes it from the saved state, `inputs_for` hands it (or, before
    either, an empty matrix of the right shape) to `build_module`.

    Scoring: the module's `users(rows)` / `items(rows)` turn ids into vectors by reading whole
    rating rows, and `head(p, q)` turns pairs of vectors into logits. A vector costs a row's worth
    of work, so the model scores in two stages (TorchRecommender's hook): each distinct user and
    item once per scoring call, then the head on the pairs."""

    _inputs: dict[str, np.ndarray] | None = None

    def inputs_for(self, n_users: int, n_items: int) -> dict[str, np.ndarray]:
        inputs = self._inputs or {f"{side}_{k}": np.zeros(n + 1 if k == "ptr" else 0,
                                                          np.float32 if k == "val" else np.int64)
                                  for side, n in (("user", n_users), ("item", n_items))
                                  for k in ("ptr", "idx", "val")}
        if len(inputs["user_ptr"]) != n_users + 1 or len(inputs["item_ptr"]) != n_items + 1:
            raise ModelError(f"{self.name}'s rating matrix is {len(inputs['user_ptr']) - 1} × "
                             f"{len(inputs['item_ptr']) - 1}, not {n_users} × {n_items}",
                             fix="load the state with the data it was trained on")
        return inputs

    def begin(self, split: Split) -> None:
        self._inputs = rating_matrix(split, self.name.upper())  # train only: no held-out rating

    def set_state(self, state: dict[str, np.ndarray], n_users: int, n_items: int) -> None:
        if not any(k in state for k in INPUTS):  # EINMF runs saved before it read rating rows
            raise ModelError(f"these saved {self.name} weights hold no rating matrix: they were saved by "
                             f"a version of {self.name} that did not read one, and cannot be rebuilt",
                             fix="train the run again; its stored metrics and top-20 lists are still there")
        self._inputs = {k: np.asarray(state[k]) for k in INPUTS if k in state}
        if len(self._inputs) < len(INPUTS):
            self._inputs = None  # the key check in super() names what is missing
        super().set_state(state, n_users, n_items)

    # ---- the two-stage scoring hook (TorchRecommender): vectors from whole rating rows -----------
    two_stage = True

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._module().users(users)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self._module().items(items)

    def pair_scores(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self._module().head(p, q)

    def item_embeddings(self) -> np.ndarray:
        """Every item's vector, as the head reads it."""
        with torch.no_grad():
            return self._vectors(self.item_vectors, torch.arange(self.n_items, device=self.device)).cpu().numpy()
