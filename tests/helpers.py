"""Tiny hand-made datasets shared by the tests."""

from pathlib import Path

import numpy as np
import pandas as pd

from recviz.data.interactions import Interactions

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
