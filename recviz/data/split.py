"""The two evaluation protocols: train / valid / test splits plus their evaluation candidates.

Both work on (user, item) *pairs*: when a pair occurs in several rows (several behaviours, repeated
views), holding it out removes every one of its rows from train — otherwise a click on the very item
the user later bought would leak the answer.

Leave-one-out (`loo`; NCF, DMF, multi-behaviour papers)
    Per user, the latest pair is test and the one before it validation; the rest train. "Latest"
    is by timestamp; equal timestamps (or no timestamps) fall back to file order, the later row
    being later. `valid="random"` instead holds out one of the user's earlier pairs drawn at
    random (seeded) as validation — what the NCF and DMF papers did (§4.1 of both: "randomly
    sampled one interaction for each user as the validation data"). Test is the latest pair either
    way; the choice matters because the pair just before test is the best clue to it, and the
    "latest" rule takes it away from training. With a `target` behaviour only pairs that have that behaviour can be held out.
    Rule for small users: a user needs at least 3 distinct (target) items — one to learn from and
    two to hold out. Smaller users keep all their rows in train and are not evaluated.
    Each held-out item is ranked among N items (default 100) drawn uniformly, without
    replacement, from the items the user never touched in any split; drawn once with the seed and
    stored with the split.
    NCF-format data ships its own test item and negatives per user: those are used as given, and
    validation is the latest remaining pair.

Ratio (`ratio`; EINMF)
    A seeded random 80/10/10 split of the pairs. Evaluation ranks every item the user has not
    interacted with in train (and, for test, not in validation either). Rule: users with held-out
    items but nothing in train (cold users) are not evaluated; their number is in `info`.

This module holds the `Split` (its views and storage) and `make_split`, which draws or reloads one;
the drawing itself is in `recviz.data.split_protocols`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recviz import paths
from recviz.data.interactions import Interactions
from recviz.data.npz import save_atomic
from recviz.data.prepare import sampled_users
from recviz.data.sampling import SeenItems
from recviz.data.split_protocols import MIN_LOO_ITEMS, RATIO, leave_one_out, ratio_split  # noqa: F401 (re-exported)
from recviz.errors import ProtocolError

PROTOCOLS = ("loo", "ratio")
VALID_RULES = ("latest", "random")  # loo: which earlier pair is validation


def protocol_label(protocol: str, n_candidates: int | None = None, valid: str | None = None, *,
                   eval_users: int | None = 0, sample_users: int | None = 0, split_seed: int | None = None) -> str:
    """The words shown next to every metric, the one place a protocol becomes text: a split
    describes itself with it, and labels rebuilt from a stored run's settings match it
    ("leave-one-out, 100 candidates"; "80/10/10 ratio split, full ranking"; with a sample of the
    evaluated users, "80/10/10 ratio split, full ranking, 5,000 sampled users"; on a user sample of
    the data, "… · 20,000-user sample"; a split drawn with a seed other than the run's,
    "leave-one-out, 100 candidates, split seed 0"). Unknown text (already a label) passes through
    unchanged."""
    if protocol == "loo":
        label = "leave-one-out" if n_candidates is None else f"leave-one-out, {int(n_candidates)} candidates"
        label += ", random validation item" if valid == "random" else ""
    elif protocol == "ratio":
        label = "80/10/10 ratio split, full ranking"
    else:
        return str(protocol)
    label += f", {int(eval_users):,} sampled users" if eval_users else ""
    label += f"{SPLIT_SEED_WORDS}{int(split_seed)}" if split_seed is not None else ""
    return label + (f" · {int(sample_users):,}-user sample" if sample_users else "")


SPLIT_SEED_WORDS = ", split seed "


def same_scale(label: str) -> str:
    """A protocol label without its split seed: runs whose splits were drawn with different seeds
    measure the same quantity (as runs of different seeds always did), so charts and the seed
    groups put them together."""
    return re.sub(re.escape(SPLIT_SEED_WORDS) + r"\d+", "", str(label))


@dataclass(eq=False)
class Split:
    protocol: str
    data: Interactions  # everything, in one id space
    train_rows: np.ndarray  # row indices into `data`
    valid_rows: np.ndarray  # one row per held-out pair
    test_rows: np.ndarray
    valid_candidates: np.ndarray | None = None  # loo: [len(valid_rows), N] item ids
    test_candidates: np.ndarray | None = None
    seed: int = 0
    n_candidates: int = 0
    target: str | None = None
    info: dict = field(default_factory=dict)
    valid_rule: str = "latest"  # loo only; see VALID_RULES
    eval_users: int = 0  # judge a seeded sample of this many test users (0 = all); see `evaluated`

    # ---- views --------------------------------------------------------------------------------
    @property
    def train(self) -> Interactions:
        return self.data.subset(self.train_rows)

    def held_out(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        rows = self._rows(part)
        return self.data.user[rows], self.data.item[rows]

    def candidates(self, part: str) -> np.ndarray | None:
        return {"valid": self.valid_candidates, "test": self.test_candidates}[part]

    def known_before(self, part: str, users: np.ndarray | None = None) -> SeenItems:
        """Items excluded from full ranking for `part`: train, plus validation when testing.

        `users`: only these users' pairs are indexed (the others' sets are empty), so one user's
        top-N (the Recommendations page) costs a mask over the rows, not an index of the whole log."""
        rows = self.train_rows if part == "valid" else np.concatenate([self.train_rows, self.valid_rows])
        d = self.data
        if users is not None:
            wanted = np.zeros(d.n_users, bool)
            wanted[np.asarray(users, np.int64)] = True
            rows = rows[wanted[d.user[rows]]]
        return SeenItems(d.user[rows], d.item[rows], d.n_users, d.n_items)

    def evaluated(self, part: str) -> np.ndarray | None:
        """Which of `held_out(part)`'s rows are judged: a boolean mask, or None for all of them.

        With `eval_users` = N (fewer than the test users), N users are drawn uniformly from the
        users with a test item, with the split's seed (a stream of their own, so the sample does not
        move the split's candidates), and both validation and test judge those users only: every
        held-out item of theirs, nobody else's. Training is untouched (the other users' held-out
        items stay out of train), so the metrics estimate the all-user ones. Reproducible from the
        seed; linear (a flag per user)."""
        sample = self.eval_sample()
        if sample is None:
            return None
        flag = np.zeros(self.data.n_users, bool)
        flag[sample] = True
        return flag[self.data.user[self._rows(part)]]

    def eval_sample(self) -> np.ndarray | None:
        """The sampled users `evaluated` keeps (sorted), or None when every user is judged."""
        if not self.eval_users:
            return None
        users = np.flatnonzero(np.bincount(self.data.user[self.test_rows], minlength=self.data.n_users))
        if self.eval_users >= len(users):
            return None
        pick = np.random.default_rng([self.seed, 2]).choice(len(users), self.eval_users, replace=False)
        return users[np.sort(pick)]

    def describe(self, run_seed: int | None = None) -> str:
        """The protocol label; naming the split's seed when it is not `run_seed` (the seed of the
        run judged on it, which set `split_seed`)."""
        return protocol_label(self.protocol, self.n_candidates if self.protocol == "loo" else None, self.valid_rule,
                              eval_users=self.eval_users, sample_users=sampled_users(self.data),
                              split_seed=self.seed if run_seed is not None and run_seed != self.seed else None)

    def _rows(self, part: str) -> np.ndarray:
        if part not in ("valid", "test"):
            raise ValueError(f"part must be 'valid' or 'test', not {part!r}")
        return self.valid_rows if part == "valid" else self.test_rows

    # ---- persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        header = {"protocol": self.protocol, "seed": self.seed, "n_candidates": self.n_candidates,
                  "target": self.target, "info": self.info, "fingerprint": self.data.fingerprint(),
                  "valid_rule": self.valid_rule}
        arrays = {"train_rows": self.train_rows, "valid_rows": self.valid_rows,
                  "test_rows": self.test_rows, "header": np.array(json.dumps(header))}
        if self.valid_candidates is not None:
            arrays.update(valid_candidates=self.valid_candidates, test_candidates=self.test_candidates)
        return save_atomic(path, arrays)

    @classmethod
    def load(cls, path: Path, data: Interactions) -> Split:
        from recviz.data import npz

        npz.check(path)
        with np.load(path, allow_pickle=False) as z:
            h = json.loads(str(z["header"]))
            if h["fingerprint"] != data.fingerprint():
                raise ProtocolError(f"stored split {path} was drawn on different data",
                                    fix="delete the file; it is redrawn on the next run")
            cands = {k: z[k] for k in ("valid_candidates", "test_candidates") if k in z.files}
            return cls(h["protocol"], data, z["train_rows"], z["valid_rows"], z["test_rows"],
                       seed=h["seed"], n_candidates=h["n_candidates"], target=h["target"],
                       info=h["info"], valid_rule=h.get("valid_rule", "latest"), **cands)


# ---- entry point ----------------------------------------------------------------------------------
def make_split(data: Interactions, protocol: str = "loo", *, seed: int = 0, n_candidates: int = 100,
               target: str | None = None, valid: str = "latest", eval_users: int = 0, cache: bool = True) -> Split:
    """Draw (or reload) the split for this data, protocol, seed, candidate count and (loo)
    validation rule; `eval_users` > 0 judges a seeded sample of that many users (`Split.evaluated`).

    With `cache`, the split is stored under `paths.splits_dir()` keyed by the data's fingerprint,
    so every model and every epoch is judged on the very same held-out items and candidates. The
    user sample is drawn from the split and the seed, so it is not part of the stored file.
    """
    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}", fix=f"use one of {', '.join(PROTOCOLS)}")
    if valid not in VALID_RULES:
        raise ProtocolError(f"unknown validation rule {valid!r}", fix=f"use one of {', '.join(VALID_RULES)}")
    if target is not None:
        data.behavior_code(target)  # raises a readable error when the behaviour is unknown
    rule = "-vrandom" if protocol == "loo" and valid == "random" else ""  # "latest" keeps the old names
    key = f"{data.fingerprint()}-{protocol}-{n_candidates if protocol == 'loo' else 0}-{target or 'all'}-{seed}{rule}.npz"
    path = paths.splits_dir() / key
    if eval_users < 0:
        raise ProtocolError(f"eval_users must be 0 (every user) or more, not {eval_users}")
    split = None
    if cache and path.exists():
        import zipfile

        try:
            split = Split.load(path, data)
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # a damaged cache: draw it again
            split = None
    if split is None:
        split = Split(**(leave_one_out(data, seed, n_candidates, target, valid) if protocol == "loo"
                         else ratio_split(data, seed, n_candidates, target)))
        if cache:
            split.save(path)
    split.eval_users = int(eval_users)
    return split


def target_train(split: Split) -> Interactions:
    """The train rows a single-behaviour model learns from. With a target behaviour (`--target`)
    on data with behaviours, only that behaviour's rows — as the multi-behaviour paper's baselines
    (BPR, WMF, NCF) learn from purchases alone — so that every model is judged on the same held-out
    target items and only multi-behaviour models (mbnmf) see the supportive rows. Otherwise all of
    train. Every single-behaviour model (neural ones, ItemPop, ItemKNN, eALS) goes through here."""
    return split.data.subset(target_rows(split))


def target_rows(split: Split) -> np.ndarray:
    """`target_train`'s rows as indices into `split.data`, in train order: a model that needs only
    some columns gathers those (`data.user[rows]`), instead of copying every column of train."""
    data = split.data
    if split.target is None or data.behavior is None:
        return split.train_rows
    return split.train_rows[data.behavior[split.train_rows] == data.behavior_code(split.target)]
