"""Beyond-accuracy metrics of stored runs, from each run's stored top-N of its evaluated users
(`recviz.eval.beyond` defines them), as one table beside HR@K and NDCG@K. A run without per-user
results (stored by an earlier version) gets "not available" in every one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recviz.analysis.peruser import RunResults
from recviz.eval import beyond

NOT_AVAILABLE = "not available"


def columns(k: int) -> list[str]:
    """The beyond-accuracy columns at K, in `beyond.METRICS` order."""
    return [beyond.name(m, k) for m in beyond.METRICS]


def run_metrics(r: RunResults, k: int = 10) -> dict[str, float | None]:
    """Every beyond-accuracy metric of one run at K (None for each when not available)."""
    if not r.available:
        return {c: None for c in columns(k)}
    pu = r.need()
    return beyond.beyond_accuracy(r.top(), k, r.n_items, pu.item_popularity, pu.history_popularity,
                                  pu.n_train_users)


def table(runs: list[RunResults], k: int = 10) -> pd.DataFrame:
    """[run, protocol, HR@K, NDCG@K, <beyond-accuracy metrics at K>, note]: numbers as floats,
    NaN where a run cannot say; `note` is why ("" when everything is there)."""
    rows = []
    for r in runs:
        row = {"run": r.label, "protocol": r.protocol,
               f"HR@{k}": r.metrics.get(f"HR@{k}"), f"NDCG@{k}": r.metrics.get(f"NDCG@{k}")}
        row.update(run_metrics(r, k))
        row["note"] = "" if r.available else (r.why_not or "")
        rows.append(row)
    cols = ["run", "protocol", f"HR@{k}", f"NDCG@{k}", *columns(k), "note"]
    return pd.DataFrame(rows, columns=cols)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """`table` as a person reads it: 4 significant digits, "not available" for a missing number."""
    out = df.copy()
    for c in out.columns:
        if c in ("run", "protocol", "note"):
            continue
        out[c] = [NOT_AVAILABLE if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.4g}"
                  for v in out[c]]
    return out
