"""Tiny hand-made datasets shared by the tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recviz.data.interactions import Interactions
from recviz.errors import DataError, RecvizError

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# a test that reads the real MovieLens-100K: skipped cleanly where ../shared/data is absent
needs_ml100k = pytest.mark.skipif(not (SHARED_DATA / "ml-100k").is_dir(), reason="../shared/data absent")


def frame(rows, columns=("user", "item", "timestamp")) -> Interactions:
    return Interactions.from_frame(pd.DataFrame(rows, columns=list(columns)), name="tiny")


def random_interactions(n_users=60, n_items=200, per_user=(4, 30), seed=0, behaviors=False) -> Interactions:
    """Random distinct pairs with timestamps (and optional behaviours with repeated pairs)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(per_user[0], per_user[1], size=n_users)
    keys = rng.random((n_users, n_items)).argsort(axis=1)
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([keys[u, :c] for u, c in enumerate(counts)])
    df = pd.DataFrame({"user": users, "item": items, "timestamp": rng.integers(0, 10_000, len(users))})
    if behaviors:
        df["behavior"] = rng.choice(["click", "buy"], size=len(df), p=[0.6, 0.4])
        again = df.sample(frac=0.3, random_state=seed).assign(behavior="click")
        again["timestamp"] -= 50  # clicked before
        df = pd.concat([df, again], ignore_index=True)
        return Interactions.from_frame(df, name="random-mb", behaviors=("click", "buy"))
    return Interactions.from_frame(df, name="random")


# ---- files for the reader tests ----------------------------------------------------------------
GENRE_FLAGS = "|".join(["0"] * 19)
# the NCF paper's three files, tiny: train, test (one per user), test negatives
NCF_TRAIN = "0\t1\t5\t100\n0\t2\t3\t101\n1\t1\t4\t102\n1\t3\t2\t103\n"
NCF_TEST = "0\t3\t4\t200\n1\t2\t5\t201\n"
NCF_NEG = "(0,3)\t7\t1000\t4\n(1,2)\t4\t12\t7\n"


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode(encoding))
    return path


def flags(*on: int) -> str:
    f = ["0"] * 19
    for i in on:
        f[i] = "1"
    return "|".join(f)


def raises(fn, *args, file: str, line: int | None = None, column: str | None = None,
           contains: tuple[str, ...] = (), **kwargs) -> DataError:
    """Run fn, expect a DataError naming `file`, the line or column, with a Fix; return it."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    err = info.value
    msg = str(err)
    assert isinstance(err, RecvizError)
    assert file in msg, msg
    assert "Fix:" in msg, msg
    if line is not None:
        assert err.row == line, msg
        assert f"line {line}" in msg, msg
    if column is not None:
        assert column in msg, msg
    for text in contains:
        assert text.lower() in msg.lower(), f"{text!r} not in {msg!r}"
    return err


def raw(d, col: str = "item") -> list[str]:
    ids = d.item_ids if col == "item" else d.user_ids
    return [str(x) for x in ids[getattr(d, col)]]


def assert_train_items_rank_first(model, split, positives=None) -> None:
    """Overfitting check: for every user, each train positive scores above every item the user never
    touched. `positives` is a boolean [users, items] mask (default: every train pair)."""
    import numpy as np

    d, train = split.data, split.train
    scores = model.score_all(np.arange(d.n_users))
    assert scores.shape == (d.n_users, d.n_items) and scores.dtype == np.float32
    touched = np.zeros((d.n_users, d.n_items), bool)
    touched[d.user, d.item] = True
    if positives is None:
        positives = np.zeros_like(touched)
        positives[train.user, train.item] = True
    worst = np.where(positives, scores, np.inf).min(axis=1)
    best_untouched = np.where(touched, -np.inf, scores).max(axis=1)
    users = positives.any(axis=1)
    assert (worst[users] > best_untouched[users]).all(), f"margins {worst[users] - best_untouched[users]}"


def peak_child_memory(code: str, timeout: float = 120) -> tuple[int, str]:
    """Run `code` in a child Python; return (its peak RSS in bytes, its stdout + stderr). The
    child is started from a fresh intermediate Python whose `getrusage(RUSAGE_CHILDREN)` sees that
    one child only (this process's own figure would keep the largest of every child it ever ran)."""
    import json
    import subprocess
    import sys

    probe = ("import json, resource, subprocess, sys\n"
             "p = subprocess.run([sys.executable, '-c', sys.argv[1]], capture_output=True, text=True)\n"
             "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,"
             " p.stdout + p.stderr]))\n")
    proc = subprocess.run([sys.executable, "-c", probe, code], capture_output=True, text=True, timeout=timeout)
    peak, out = json.loads(proc.stdout.strip().splitlines()[-1])
    return peak, out
