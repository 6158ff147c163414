"""Why an item is recommended: for one user's top-N, the history items that most support each
recommended item, with the measure named for what it is.

- ItemKNN: the user's items that are kept neighbours of the recommended item, with their
  similarity weights — the terms of the score itself (score = Σ of these weights).
- Models with item embeddings: the user's train items closest to it in the model's item space
  (cosine). Closeness, not cause: the model's score is not a sum over these.
- ItemPop: popular overall, not personal — no history item supports it.
- Multi-behaviour data: each supporting item names the behaviour(s) the user had with it.

Bounded: the work is (top-N items) × (one user's history), never users × items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

NEIGHBOURS = "neighbours"
CLOSEST = "closest"
POPULAR = "popular"
NONE = "none"

MEASURES = {
    NEIGHBOURS: "the user's items among its ItemKNN neighbours, with their similarity weights (the score is their sum)",
    CLOSEST: "the user's items closest in the model's item space (cosine similarity) — closeness, not a cause",
    POPULAR: "popular overall, not personal: ItemPop ranks every user's unseen items by popularity",
    NONE: "this model offers no per-item support to show",
}
SHOWN = 10  # items the Recommendations page explains
COLUMNS = ["rank", "item", "title", "supported by", "support title", "weight", "behaviour"]


@dataclass
class Why:
    """`kind`: one of NEIGHBOURS, CLOSEST, POPULAR, NONE; `measure`: the words for it; `frame`:
    one row per (recommended item, supporting history item), best support first — rank, item
    (raw id), title, supported by (raw id), support title, weight, behaviour."""

    kind: str
    frame: pd.DataFrame

    @property
    def measure(self) -> str:
        return MEASURES[self.kind]

    def lines(self, digits: int = 3) -> dict[int, str]:
        """Rank → one line: "A (0.512, view), B (0.301)"; the measure's words for ItemPop and
        models with no support."""
        out: dict[int, str] = {}
        for rank, rows in self.frame.groupby("rank", sort=True):
            parts = [f"{r['support title']} ({r['weight']:.{digits}f}" + (f", {r['behaviour']})" if r["behaviour"] else ")")
                     for _, r in rows.iterrows() if r["supported by"] != ""]
            out[int(rank)] = ", ".join(parts) if parts else ("popular overall, not personal" if self.kind == POPULAR
                                                             else "no history item supports it")
        return out

    def to_dict(self) -> dict:
        return {"kind": self.kind, "measure": self.measure, "support": self.frame.to_dict(orient="records")}


def explain(model, split, user: int, items, k: int = 3, titles: np.ndarray | None = None,
            train_rows: np.ndarray | None = None) -> Why:
    """The support of each of `items` (internal ids, in rank order) for internal `user`: at most
    `k` history items each. `split`: the run's split (the user's train rows, their behaviours).
    `train_rows`: the user's train rows when the caller has them (from a per-user row index, e.g.
    `analysis.runview`), which spares the scan of every train row of the log."""
    from recviz.analysis.dataset import item_titles

    data = split.data
    items = np.asarray(items, dtype=np.int64)
    titles = item_titles(data) if titles is None else titles
    rows = (split.train_rows[data.user[split.train_rows] == user] if train_rows is None
            else np.sort(np.asarray(train_rows, np.int64)))  # row order, as the scan gives them
    behaviours = _behaviours(data, rows)
    kind, support = _support(model, user, items, data.item[rows], k)
    out = []
    for rank, (j, pairs) in enumerate(zip(items, support), start=1):
        base = {"rank": rank, "item": data.item_ids[j], "title": titles[j]}
        if not pairs:
            out.append({**base, "supported by": "", "support title": "", "weight": np.nan, "behaviour": ""})
        for i, w in pairs:
            out.append({**base, "supported by": data.item_ids[i], "support title": titles[i], "weight": float(w),
                        "behaviour": behaviours.get(int(i), "")})
    return Why(kind, pd.DataFrame(out, columns=COLUMNS))


def for_run(store, run, raw_user, n: int = 10, k: int = 3) -> Why:
    """`explain` for a stored run's top-`n` of one user (by raw id), from its stored weights,
    top-N list (made now when the run did not store it) and split."""
    from recviz.analysis.dataset import find_user
    from recviz.experiments import artifacts
    from recviz.experiments.experiment import prepare_split

    run_dir = artifacts.run_files(store, run)
    model = artifacts.load_model(run_dir)[0]
    split = prepare_split(run.config)
    u = find_user(split.data.user_ids, raw_user, run.config.dataset)
    top, scores = (a[:n] for a in artifacts.user_topn(artifacts.load_topn(run_dir), u, run_dir, model, split))
    return explain(model, split, u, top[np.isfinite(scores)], k=k)


def _support(model, user: int, items: np.ndarray, history: np.ndarray, k: int):
    """(kind, per item a list of (history item, weight), best first)."""
    if hasattr(model, "sim") and hasattr(model, "x"):  # ItemKNN: the neighbours that summed to the score
        mine = model.x[user].indices  # the user's items the model scores from (its target behaviour's)
        out = []
        for j in items:
            lo, hi = model.sim.indptr[j], model.sim.indptr[j + 1]
            nb, w = model.sim.indices[lo:hi], model.sim.data[lo:hi]
            has = np.isin(nb, mine)
            nb, w = nb[has], w[has]
            order = np.lexsort((nb, -w))[:k]
            out.append(list(zip(nb[order].tolist(), w[order].tolist())))
        return NEIGHBOURS, out
    if model.spec.name == "itempop":
        return POPULAR, [[] for _ in items]
    emb = model.item_embeddings()
    if emb is None or len(history) == 0:
        return NONE, [[] for _ in items]
    hist = np.unique(history)
    a = _unit(np.asarray(emb[items], dtype=np.float64))
    b = _unit(np.asarray(emb[hist], dtype=np.float64))
    cos = a @ b.T  # [top-N, history]
    out = []
    for row in cos:
        order = np.lexsort((hist, -row))[:k]
        out.append(list(zip(hist[order].tolist(), row[order].tolist())))
    return CLOSEST, out


def _unit(m: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norm > 0, norm, 1.0)


def _behaviours(data, rows: np.ndarray) -> dict[int, str]:
    """Item → its behaviours in these rows ("view, buy"), for multi-behaviour data; else {}."""
    if data.behavior is None or len(rows) == 0:
        return {}
    pairs = np.unique(np.c_[data.item[rows].astype(np.int64), data.behavior[rows].astype(np.int64)], axis=0)
    out: dict[int, list[str]] = {}
    for i, b in pairs:
        out.setdefault(int(i), []).append(data.behaviors[b])
    return {i: ", ".join(bs) for i, bs in out.items()}
