"""What a finished run leaves on disk beside the store, in `runs/<id>/`:

- `model.pt`     the model's `get_state()` arrays as a plain {name: tensor} dict, so loading uses
                 `torch.load(weights_only=True)` and never unpickles arbitrary objects;
- `ids.npz`      raw user / item ids (and item titles, genres when the data has them);
- `topn.npz`     top-N items with scores, excluding what the user had in train and validation,
                 of every user or — past `topn.user_bound(n_items)` users (TOPN_CELLS scored
                 cells, at most TOPN_USERS users) — of that many (evaluated users first), named
                 in `users`, whose length is how many a run stored: what the app shows without
                 loading data or model (another user's list is made on demand, `user_topn`);
- `eval.npz`     per evaluated user: the test metrics at every K, the held-out item's rank and the
                 held-out items; with what train says of them (user activity, the popularity of
                 items and of each user's history) and the split's identity, so comparing,
                 slicing and beyond-accuracy views need no data, model or re-scoring
                 (`load_per_user`; `EVAL_FORMAT`);
- `history.json` the per-epoch reports;
- `meta.json`    config, sizes, model name, metrics. Written last: its presence means the set is
                 complete.

Each file is written with `recviz.files.write_atomic`, so a crash never leaves a half file.
torch is imported only inside the functions that need it (it takes seconds to import).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recviz.errors import RecvizError
from recviz.files import read_json, write_atomic, write_json

if TYPE_CHECKING:
    from recviz.data.split import Split

FORMAT = 1
# eval.npz: 1 held users and float64 metrics only (no held-out items, no split identity, no train
# popularity: its runs show "not available" in the views that need those); 2 is `_per_user`'s
EVAL_FORMAT = 2
FILES = ("model.pt", "ids.npz", "topn.npz", "eval.npz", "history.json", "meta.json")
OPTIONAL_FILES = ("item_coords.npz",)  # only models with item embeddings


def save(run_dir: str | Path, result, top_n: int = 20) -> Path:
    """Write the artifacts of a `RunResult` into `run_dir`."""
    import torch

    from recviz.experiments import topn

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data, split, model, config = result.data, result.split, result.model, result.config
    state = model.get_state()
    write_atomic(run_dir / "model.pt", lambda fh: torch.save(
        {k: torch.from_numpy(np.require(v, requirements=["C", "W"])) for k, v in state.items()}, fh))

    ids = {"user_ids": np.asarray(data.user_ids).astype(str), "item_ids": np.asarray(data.item_ids).astype(str)}
    for col in ("title", "genres"):
        if data.items is not None and col in data.items:
            ids[f"item_{col}"] = data.items[col].fillna("").astype(str).to_numpy().astype(str)
    write_atomic(run_dir / "ids.npz", lambda fh: np.savez(fh, **ids))

    users = topn.stored_users(data.n_users, result.test.users, config.seed, topn.user_bound(data.n_items))
    k = min(top_n, data.n_items)
    items, scores = topn.lists(model, split, users, k, config.seed)
    write_atomic(run_dir / "topn.npz", lambda fh: np.savez(fh, items=items, scores=scores, users=users))
    write_json(run_dir / "history.json", [r.to_dict() for r in result.history])
    per_user = _per_user(result)
    write_atomic(run_dir / "eval.npz", lambda fh: np.savez_compressed(fh, **per_user))
    _save_item_coords(run_dir, model)

    meta = {"format": FORMAT, "model": config.model, "config": config.to_dict(),
            "n_users": data.n_users, "n_items": data.n_items, "top_n": k,
            "state_keys": sorted(state), "summary": result.summary()}
    write_json(run_dir / "meta.json", meta)
    return run_dir


def _per_user(result) -> dict[str, np.ndarray]:
    """eval.npz's arrays: per evaluated user (in `users` order) every test metric and `rank`
    (float32), the held-out items as CSR (`held_indptr`, `held_items`), `activity` and
    `history_popularity`; per item `item_popularity`; and `n_train_users`, `split_id`, `format`.
    Popularity is counted on what single-behaviour models learn from (`target_train`)."""
    from recviz.data.split import target_train
    from recviz.eval import beyond

    split, test = result.split, result.test
    data = split.data
    users = np.asarray(test.users, np.int64)
    index = np.full(data.n_users, -1, np.int64)  # user → its row in `users`
    index[users] = np.arange(len(users))
    held_users, held_items = split.held_out("test")
    row = index[held_users]
    row, held_items = row[row >= 0], held_items[row >= 0]
    order = np.lexsort((held_items, row))
    indptr = np.r_[0, np.cumsum(np.bincount(row, minlength=len(users)))]
    train = target_train(split)
    popularity = beyond.item_popularity(train.user, train.item, data.n_items)
    activity, history = beyond.user_profile(train.user, train.item, data.n_users, data.n_items, popularity)
    small = np.int32 if max(data.n_users, data.n_items) < np.iinfo(np.int32).max else np.int64
    out = {name: np.asarray(v, np.float32) for name, v in test.per_user.items()}
    out.update(users=users.astype(small), held_indptr=indptr.astype(np.int64), held_items=held_items[order].astype(small),
               activity=activity[users].astype(np.int32), history_popularity=history[users].astype(np.float32),
               item_popularity=popularity.astype(np.int32), n_train_users=np.array(int((activity > 0).sum())),
               split_id=np.array(split_id(split)), format=np.array(EVAL_FORMAT))
    return out


def split_id(split) -> str:
    """What a test was judged on, as a hash: the data's content, the protocol, and the rows held
    out and candidates drawn. Two runs with the same id ranked the same users' same held-out items
    among the same candidates (or the same unseen items), so their per-user results pair."""
    import hashlib

    h = hashlib.sha1()
    h.update(f"{split.data.fingerprint()}|{split.protocol}|{split.target}|{split.n_candidates}".encode())
    for part in (split.valid_rows, split.test_rows, split.test_candidates):
        h.update(b"-" if part is None else np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]


def _save_item_coords(run_dir: Path, model) -> None:
    """2-D PCA of the model's item embeddings, when it has any, so pages draw the map without
    loading torch or the model."""
    vectors = model.item_embeddings()
    if vectors is None:
        return
    from recviz.analysis.embeddings import explained_variance, pca_2d

    vectors = np.asarray(vectors, dtype=np.float64)
    write_atomic(run_dir / "item_coords.npz", lambda fh: np.savez(
        fh, xy=pca_2d(vectors).astype(np.float32), explained=np.array(explained_variance(vectors))))


def load_eval(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """{"users": evaluated users, "<metric>"/"rank": per-user values}, or None for older runs."""
    path = Path(run_dir) / "eval.npz"
    return _npz(path) if path.exists() else None


@dataclass
class PerUser:
    """A run's per-user test results (eval.npz, `EVAL_FORMAT`), row i for user `users[i]`."""
    users: np.ndarray  # internal user ids of the evaluated users
    metrics: dict[str, np.ndarray]  # "HR@10" → per-user values
    rank: np.ndarray  # the held-out item's (expected) rank; full ranking: the best held-out item's, inf beyond the list
    held_indptr: np.ndarray  # user i's held-out items: held_items[held_indptr[i]:held_indptr[i + 1]]
    held_items: np.ndarray
    activity: np.ndarray  # distinct items the user has in train
    history_popularity: np.ndarray  # mean train popularity of those items
    item_popularity: np.ndarray  # per item: distinct users who have it in train
    n_train_users: int
    split_id: str


def load_per_user(run_dir: str | Path) -> PerUser | None:
    """The per-user results of a run, or None when it has none that the views can trust: no
    eval.npz, or one stored by an earlier version (without held-out items, train popularity or the
    split's identity). A damaged file is an error, never a number."""
    path = Path(run_dir) / "eval.npz"
    if not path.exists():
        return None
    z = _npz(path)
    if "format" not in z or int(z["format"]) < EVAL_FORMAT:
        return None
    meta = load_meta(run_dir)
    needed = ("users", "rank", "held_indptr", "held_items", "activity", "history_popularity", "item_popularity",
              "n_train_users", "split_id")
    missing = [k for k in needed if k not in z]
    if missing:
        raise _damaged(path, f"it lacks {', '.join(missing)}")
    users, n = z["users"], len(z["users"])
    metrics = {k: v for k, v in z.items() if "@" in k}
    per_user = {"rank": z["rank"], "activity": z["activity"], "history_popularity": z["history_popularity"], **metrics}
    bad = [k for k, v in per_user.items() if v.shape != (n,)]
    if bad or users.dtype.kind not in "iu" or z["held_indptr"].shape != (n + 1,):
        raise _damaged(path, f"its arrays do not all hold one value per evaluated user ({n})")
    if n and (users.min() < 0 or users.max() >= meta["n_users"]):
        raise _damaged(path, f"it names users outside 0–{meta['n_users'] - 1}")
    if z["item_popularity"].shape != (meta["n_items"],) or z["held_indptr"][-1] != len(z["held_items"]):
        raise _damaged(path, "its item arrays do not match the run's items")
    if any(np.isnan(v).any() for v in metrics.values()):
        raise _damaged(path, "some metrics are NaN")
    return PerUser(users.astype(np.int64), {k: v.astype(np.float64) for k, v in metrics.items()},
                   z["rank"].astype(np.float64), z["held_indptr"], z["held_items"].astype(np.int64),
                   z["activity"].astype(np.int64), z["history_popularity"].astype(np.float64),
                   z["item_popularity"].astype(np.int64), int(z["n_train_users"]), str(z["split_id"]))


def load_item_coords(run_dir: str | Path) -> dict[str, np.ndarray] | None:
    """{"xy": [n_items, 2], "explained": [2]} or None when the model has no item embeddings."""
    path = Path(run_dir) / "item_coords.npz"
    return _npz(path) if path.exists() else None


def load_meta(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "meta.json"
    if not path.exists():
        raise RecvizError(f"{run_dir} holds no saved model (no meta.json)",
                          fix="only runs that finished ('done') have artifacts; train it again")
    try:
        meta = read_json(path)
        ok = isinstance(meta, dict) and all(isinstance(meta.get(k), int) and meta[k] > 0 for k in ("n_users", "n_items"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise _damaged(path, str(e)) from None
    if not ok:
        raise _damaged(path, "no user and item counts in it")
    return meta


def run_files(store, run) -> Path:
    """The folder of `run`'s artifacts, checked to hold *this* run's: its meta.json names the
    config the store has for the run. A folder swapped with another run's (or restored from the
    wrong backup) is one message naming it, never another run's lists shown as this one's."""
    from recviz.config import RunConfig

    folder = store.run_dir(run.id)
    meta = load_meta(folder)
    # where and with what a run trained (the store pins the data version when it starts, a worker
    # may set its threads) is not what makes it this run: its data, model, options, seed and protocol are
    resolved = {k: getattr(run.config, k) for k in ("data_version", "threads", "device")}
    try:
        theirs = RunConfig.from_stored(meta["config"]).replace(**resolved)
    except Exception:  # noqa: BLE001 — whatever is wrong with it, it is not this run's
        theirs = None
    if theirs != run.config:
        mine = run.config.to_dict()
        differ = sorted(k for k, v in (theirs.to_dict() if theirs else {}).items() if mine.get(k) != v) or ["unreadable"]
        raise RecvizError(f"{folder} holds the files of another run (their settings differ from run {run.id}'s "
                          f"in {', '.join(differ)}); they are not shown", file=str(folder / "meta.json"),
                          fix="put each run's folder back under its own id, or train the run again")
    return folder


def load_ids(run_dir: str | Path) -> dict[str, np.ndarray]:
    """Raw user and item ids (+ item titles, genres), checked against the run's sizes."""
    meta, path = load_meta(run_dir), Path(run_dir) / "ids.npz"
    ids = _npz(path)
    sizes = {"user_ids": meta["n_users"], "item_ids": meta["n_items"], "item_title": meta["n_items"],
             "item_genres": meta["n_items"]}
    for key, n in sizes.items():
        if key not in ids and key in ("user_ids", "item_ids"):
            raise _damaged(path, f"it has no {key}")
        if key in ids and (ids[key].shape != (n,) or ids[key].dtype.kind != "U"):
            raise _damaged(path, f"{key} is {ids[key].dtype} {ids[key].shape}, not {n} texts")
    return ids


def load_model(run_dir: str | Path):
    """(model, meta, ids): the trained model rebuilt from its config and stored weights."""
    import torch

    from recviz.config import RunConfig
    from recviz.experiments.experiment import build_model

    meta = load_meta(run_dir)
    path = Path(run_dir) / "model.pt"
    if not path.is_file():
        raise _damaged(path, "it is missing")
    config = RunConfig.from_stored(meta["config"])
    model = build_model(config)
    try:  # a truncated, garbled or edited file, or weights of another shape
        tensors = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: t.numpy() for k, t in tensors.items()}
        model.set_state(state, meta["n_users"], meta["n_items"])
    except RecvizError:
        raise
    except Exception as e:  # noqa: BLE001 — whatever torch or the model says, the file is the cause
        raise _damaged(path, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return model, meta, load_ids(run_dir)


def load_topn(run_dir: str | Path) -> dict[str, np.ndarray]:
    """{"items": int64 [n_stored, N] internal item ids, "scores": float32 [n_stored, N], "users":
    int64 [n_stored] the users (sorted internal ids) of the rows}; a score of -inf pads users that
    have fewer than N unseen items; `len(users)` is how many lists the run stored. A file without
    `users` (written before `topn.user_bound`) holds every user. A damaged or edited file is refused, never shown: every listed id must be an
    item, every score a number (or the -inf padding), every user a user of the run, once."""
    meta = load_meta(run_dir)  # a readable error when the run has no artifacts
    path = Path(run_dir) / "topn.npz"
    z = _npz(path)
    items, scores = z.get("items"), z.get("scores")
    users = z.get("users", np.arange(meta["n_users"]))
    expected = f"{meta['n_users']} users × items 0–{meta['n_items'] - 1}"
    if items is None or scores is None:
        raise _damaged(path, "it lacks the items or the scores array")
    if items.dtype.kind not in "iu" or scores.dtype.kind != "f" or users.dtype.kind not in "iu":
        raise _damaged(path, f"items are {items.dtype}, scores {scores.dtype} and users {users.dtype}, not "
                             "integers, floats and integers")
    if items.ndim != 2 or items.shape != scores.shape or users.shape != items.shape[:1]:
        raise _damaged(path, f"its arrays are {items.shape}, {scores.shape} and {users.shape} users, not {expected}")
    if len(users) and (users[0] < 0 or users[-1] >= meta["n_users"] or (np.diff(users) <= 0).any()):
        raise _damaged(path, f"its users are not sorted distinct ids of the run's {meta['n_users']} users")
    shown = np.isfinite(scores)
    if (shown & ((items < 0) | (items >= meta["n_items"]))).any():
        raise _damaged(path, f"it lists item ids outside {expected}")
    if (~shown & (scores != -np.inf)).any():
        raise _damaged(path, "some scores are NaN or +inf")
    return {"items": items.astype(np.int64, copy=False), "scores": scores, "users": users.astype(np.int64, copy=False)}


def user_topn(stored: dict, user: int, run_dir, model=None, split=None) -> tuple[np.ndarray, np.ndarray]:
    """User `user`'s (items [N], scores [N]) in the run of `run_dir` whose lists `stored` are (`load_topn`): its
    stored row, or else made now for that user alone from the run's model and split (`model`,
    `split` when the caller has them loaded; else from the run's files and its dataset). A list that
    needs the dataset while it cannot be loaded is a RecvizError saying so."""
    from recviz.experiments.topn import lists, stored_or_made

    def make():
        meta = load_meta(run_dir)
        run_split = _split(meta, user, len(stored["users"]), run_dir) if split is None else split
        run_model = load_model(run_dir)[0] if model is None else model
        return lists(run_model, run_split, [user], stored["items"].shape[1], meta["config"]["seed"])

    return stored_or_made(stored, user, make)


def _split(meta: dict, user: int, n_stored: int, run_dir) -> Split:
    """The run's split, for a user whose list was not stored: it needs the run's dataset."""
    from recviz.config import RunConfig
    from recviz.experiments.experiment import prepare_split

    config = RunConfig.from_stored(meta["config"])
    try:
        return prepare_split(config)
    except RecvizError as e:
        raise RecvizError(f"the top-N list of user {user} was not stored with the run in {run_dir} (it stores "
                          f"{n_stored:,} users' lists), and making it needs the run's dataset "
                          f"'{config.dataset}', which cannot be loaded: {e.problem}",
                          fix=e.fix or "make the dataset available again (upload or download it), or pick "
                                       "one of the run's evaluated users") from None


def _npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz (no pickles); a missing, truncated or garbled file is a RecvizError."""
    import zipfile

    if not path.exists():
        raise _damaged(path, "it is missing")
    from recviz.data import npz

    try:
        return npz.load(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise _damaged(path, f"{type(e).__name__}: {e}") from None


def _damaged(path: Path, why: str) -> RecvizError:
    return RecvizError(f"{path} is damaged or was edited ({why[:200]}); it is not shown",
                       fix="train the run again with its settings (kept in runs/<id>/config.json); that "
                           "writes these files anew")


def recommend_for(run_dir: str | Path, raw_user_id, k: int = 10, item_table: pd.DataFrame | None = None) -> pd.DataFrame:
    """The top-k (at most the saved top-N) for one user by raw id, stored or made on demand
    (`user_topn`): columns rank, item
    (raw id), title, score (+ genres when known). `item_table` (titles and genres by raw item
    id, `recviz.data.item_info`) names items the run stored no title for: titles given to its
    dataset after it was trained."""
    from recviz.analysis.dataset import find_user, top_list

    stored, ids = load_topn(run_dir), load_ids(run_dir)
    u = find_user(ids["user_ids"], raw_user_id)
    items, scores = user_topn(stored, u, run_dir)
    items, scores = items[:k], scores[:k]
    raw = ids["item_ids"][items]
    later = item_table.reindex(raw.astype(str)) if item_table is not None else None
    named = {}
    for col in ("title", "genres"):
        stored = ids[f"item_{col}"][items] if f"item_{col}" in ids else [""] * len(items)
        given = later[col].to_numpy(dtype=object) if later is not None and col in later else [None] * len(items)
        named[col] = np.array([s if s else (g if isinstance(g, str) and g else "") for s, g in zip(stored, given)],
                              dtype=object)
    title = np.array([t or f"item {r}" for t, r in zip(named["title"], raw)], dtype=object)
    out = top_list(np.arange(len(items)), scores, raw, title)
    if any(named["genres"]):
        out["genres"] = named["genres"][np.isfinite(scores)]
    return out
